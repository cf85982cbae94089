"""report.md: the same tables, with relative links to the run's images and the chart files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..paths import safe_name
from .build import ReportData, RunView
from .compare import COMPARE_HEADERS, P_NOTE
from .findings import Finding
from .probes import ProbeSection, demote_markdown, rebase_markdown
from .tables import FACETS_NOTE, facet_table, result_cells, result_headers

THINK_CHARS = 300


def _md(value: Any) -> str:
    """A table cell: one line, pipes escaped."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rel(path: Path, out_dir: Path) -> str:
    """A link target from the report to ``path``, percent-encoded: a space or ``#`` in a run
    folder's name would otherwise end the link or start a fragment."""
    return quote(Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix())


def chart_name(view: RunView, task: str) -> str:
    return f"figures/{safe_name(view.run.label)}-{safe_name(task)}.png"


def findings_md(findings: Sequence[Finding], warnings: Sequence[str] = ()) -> str:
    rows = [[f.number, f.claim, f"**{f.verdict}**", f.measured, f.test] for f in findings]
    notes = "".join(f"> **Warning:** {w}\n\n" for w in warnings)
    return "## Findings\n\n" + notes + md_table(["#", "claim", "verdict", "measured", "test"], rows)


def _samples_md(view: RunView, out_dir: Path) -> list[str]:
    modes = view.run.modes
    parts = []
    for task in view.tasks:
        if not task.items:
            continue
        rows = []
        for item in task.items:
            first = item.members[modes[0]]
            level = f" (level {item.level})" if item.level is not None else ""
            left = (f"**{item.key}**{level} "
                    + " / ".join(str(r.get("prompt")) for r in first)
                    + f" — expected: {', '.join(str(r.get('expected')) for r in first)}")
            for r in item.understanding:
                left += f" — U: {r.get('question')} → {r.get('reply')} ({r.get('verdict')})"
            cells = [left]
            for mode in modes:
                bits = [f"**{item.verdict(mode)}**"]
                for r in item.members[mode]:
                    path = view.run.image(r.get("image"))
                    bits.append(f"![{r.get('id')}]({_rel(path, out_dir)})" if path else "missing image")
                    if r.get("description"):
                        bits.append(f"({r['description']})")
                    think = str(r.get("think") or "")
                    if think:
                        cut = think[:THINK_CHARS] + ("…" if len(think) > THINK_CHARS else "")
                        bits.append(f"<br>*think:* {cut}")
                cells.append(" ".join(bits))
            rows.append(cells)
        parts.append(f"#### {task.name}\n\n" + md_table(["item", *[f"G-{m}" for m in modes]], rows))
    return parts


def _probe_md(section: ProbeSection, out_dir: Path) -> str:
    title = f"### Probe: {section.title}\n\n"
    if section.md_path is not None:
        return title + demote_markdown(rebase_markdown(section.text(section.md_path),
                                                       section.folder, out_dir))
    if section.html_path is not None:
        return title + f"See [{section.html_path.name}]({_rel(section.html_path, out_dir)})."
    return title


def render_markdown(data: ReportData, out_dir: Path) -> str:
    """The Markdown report; chart links point at ``figures/`` (written by the caller)."""
    parts = [f"# {data.title}\n\nunisandbox {__version__} report of {data.contents}. "
             "Accuracies in %, 95 % Wilson interval in "
             "brackets; gap = U − G in points."]
    if data.findings is not None:
        parts.append(findings_md(data.findings, data.findings_warnings))
    if data.comparison is not None:
        c = data.comparison
        parts.append(f"## Compare: A = {c.label_a}, B = {c.label_b}\n\n"
                     + md_table(COMPARE_HEADERS, [r.cells() for r in c.rows])
                     + f"\n\nCIs separate: the 95 % Wilson intervals do not overlap. {P_NOTE}")
    for view in data.runs:
        run = view.run
        parts.append(f"## Run: {run.label}\n\n" + md_table(["", ""], view.header))
        if run.missing_tasks:
            then = "It is still running." if run.running else f"Resume it with the same `{run.command}` command."
            parts.append(f"> Not finished: {'; '.join(run.missing_tasks)}. {then}")
        parts.append("### Results\n\n" + md_table(
            result_headers(run.modes), [result_cells(r, run.modes) for r in view.rows]))
        headers, rows = facet_table(run.results)
        if rows:
            parts.append("### What the pictures got right\n\n" + md_table(headers, rows)
                         + f"\n\n{FACETS_NOTE}")
        charts = [t for t in view.tasks if t.chart]
        if charts:
            parts.append("### U vs G per level (95 % intervals)\n\n" + "\n".join(
                f"![{t.name}]({chart_name(view, t.name)})" for t in charts))
        if run.modes and (view.grid_note or any(t.items for t in view.tasks)):
            parts.append("### Samples")
            if view.grid_note:
                parts.append(f"> {view.grid_note}")
            else:
                parts.extend(_samples_md(view, out_dir))
        if run.probes:
            parts.append("### Probes")
            parts.extend(_probe_md(s, out_dir) for s in run.probes)
    if data.probes:
        parts.append("## Probes")
        parts.extend(_probe_md(s, out_dir) for s in data.probes)
    return "\n\n".join(parts) + "\n"
