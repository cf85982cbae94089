"""Reports of run folders: report.html (self-contained), report.md, comparisons and findings.

    from unisandbox.report import write_report
    write_report([Path("runs/base")], Path("runs/base/report"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError
from ..run.store import atomic_write_bytes
from .build import ITEMS_PER_TASK, ReportData, build_report
from .findings import Finding
from .load import load_folders

__all__ = ["ITEMS_PER_TASK", "ReportData", "write_report"]


def write_report(folders: Sequence[Path], out: Path, *, title: str | None = None,
                 findings: list[Finding] | None = None, compare: bool = False,
                 items_per_task: int = ITEMS_PER_TASK,
                 findings_warnings: Sequence[str] = ()) -> ReportData:
    """Write ``out/report.html``, ``out/report.md`` and ``out/figures/*.png`` (each atomically).

    ``folders`` are run folders and/or probe folders; ``compare`` adds an A/B section for the
    first two runs; ``findings_warnings`` are shown above the findings (the findings file's).
    """
    from .html import render_html
    from .markdown import chart_name, render_markdown

    runs, probes = load_folders(list(folders))
    if not runs and not probes:
        raise UserError("nothing to report: pass at least one run folder")
    if compare and len(runs) != 2:
        raise UserError(f"compare needs exactly two run folders, got {len(runs)}")
    default = "unisandbox report: " + ", ".join(r.label for r in runs) if runs else "unisandbox probes"
    data = build_report(runs, title=title or default, probes=probes, findings=findings,
                        compare=compare, items_per_task=items_per_task,
                        findings_warnings=findings_warnings)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder")
    files = {out / chart_name(view, task.name): task.chart
             for view in data.runs for task in view.tasks if task.chart}
    files[out / "report.md"] = render_markdown(data, out).encode("utf-8")
    files[out / "report.html"] = render_html(data).encode("utf-8")
    for path, payload in files.items():
        atomic_write_bytes(path, payload)
    return data
