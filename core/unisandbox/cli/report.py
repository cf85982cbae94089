"""``unisandbox report``, ``compare`` and ``findings``: present what runs measured."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..errors import UserError
from .common import OutPath, echo_json, json_option, table


def _width() -> int:
    """The terminal's width (150 when not a terminal), at least 100."""
    return max(100, shutil.get_terminal_size((150, 24)).columns)


_folder = click.Path(path_type=Path, exists=True, file_okay=False)


@click.command()
@click.argument("folders", nargs=-1, required=True, type=_folder, metavar="RUN_DIR...")
@click.option("--out", type=OutPath(file_okay=False), default=None,
              help="Folder for report.html, report.md and figures/  [default: RUN_DIR/report "
                   "for one run; required for several].")
@click.option("--title", default=None, help="Report title.")
@click.option("--findings", "findings_file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="A findings.json (from `unisandbox findings --out`) to show first.")
@click.option("--items", type=click.IntRange(0, 100), default=6, show_default=True,
              help="Sample items per task in the image grid.")
def report(folders: tuple[Path, ...], out: Path | None, title: str | None,
           findings_file: Path | None, items: int) -> None:
    """Write report.html (one self-contained file) and report.md for run folders.

    \b
    Example:
      unisandbox report runs/base runs/stars --out runs/report --findings runs/findings.json

    A RUN_DIR may also be a probe folder (one holding section.html or section.md); a run's
    probes/ subfolder is included automatically.
    """
    from ..report import write_report
    from ..report.findings import findings_table, findings_warnings, load_findings

    seen = [f.resolve() for f in folders]
    twice = next((f for i, f in enumerate(folders) if seen[i] in seen[:i]), None)
    if twice is not None:
        raise UserError(f"{twice} is given twice; give each folder once")
    if out is None:
        if len(folders) != 1:
            raise UserError("several folders: say where the report goes with --out DIR")
        out = folders[0] / "report"
    findings = load_findings(findings_file) if findings_file else None
    warnings = findings_warnings(findings_file) if findings_file else []
    write_report(list(folders), out, title=title, findings=findings, items_per_task=items,
                 findings_warnings=warnings)
    if findings:
        click.echo(findings_table(findings, width=_width()))
        click.echo()
    for warning in warnings:
        click.echo(f"warning: {findings_file}: {warning}", err=True)
    click.echo(f"report: {out / 'report.html'}")
    click.echo(f"        {out / 'report.md'}")


@click.command()
@click.argument("run_a", type=_folder)
@click.argument("run_b", type=_folder)
@click.option("--out", type=OutPath(file_okay=False), default=None,
              help="Also write a report of both runs with the comparison on top, into this folder.")
@json_option
def compare(run_a: Path, run_b: Path, out: Path | None, as_json: bool) -> None:
    """Two runs side by side (e.g. before and after STARS).

    Per task, level and mode (U and each generation mode): both accuracies with 95 %
    intervals, the difference B − A, whether the intervals separate, and a two-sided p-value:
    of the exact McNemar test where both runs judged the same items (paired, from their
    samples.jsonl), else of the two-proportion z-test; the `test` column says which.
    """
    from ..report.compare import (
        COMPARE_HEADERS,
        P_NOTE,
        comparability,
        compare_results,
        paired_units,
    )
    from ..report.load import RunData, load_run

    if run_a.resolve() == run_b.resolve():
        raise UserError(f"{run_b} is given twice; give each folder once (compare two different runs)")
    a, b = load_run(run_a), load_run(run_b)
    rows = compare_results(a.results, b.results, paired_units(a, b))
    if not any(r.a is not None and r.b is not None for r in rows):
        def measured(run: RunData) -> str:
            tasks = ", ".join(run.results["tasks"]) or "none"
            return f"{tasks} in mode {', '.join(run.modes) or 'none (U alone)'}"

        raise UserError(f"{run_a} and {run_b} share no measured task, level and mode: nothing to "
                        f"compare (A: {measured(a)}; B: {measured(b)})")
    unfinished = [f"{label} ({folder}) is not finished: {'; '.join(run.missing_tasks)}"
                  for label, folder, run in (("A", run_a, a), ("B", run_b, b)) if run.missing_tasks]
    for note in [*unfinished, *comparability(a.config, b.config, rows)]:
        click.echo(f"warning: {note}", err=True)
    if out is not None:
        from ..report import write_report

        write_report([run_a, run_b], out, compare=True,
                     title=f"unisandbox compare: {run_a.name} → {run_b.name}")
    if as_json:
        echo_json({"a": str(run_a), "b": str(run_b), "rows": [r.to_json() for r in rows],
                   "warnings": [*unfinished, *comparability(a.config, b.config, rows)]})
        return
    click.echo(f"A = {run_a}\nB = {run_b}\n")
    click.echo(table([r.cells() for r in rows], COMPARE_HEADERS))
    click.echo(f"\n{P_NOTE}")
    if out is not None:
        click.echo(f"\nreport: {out / 'report.html'}")


@click.command()
@click.option("--base", type=_folder, default=None, help="Run folder before any training (U, G).")
@click.option("--stars", type=_folder, default=None, help="Run folder after STARS (filtered).")
@click.option("--stars-nofilter", type=_folder, default=None, help="Run folder after STARS with --train-arg no_filter=true (the ablation).")
@click.option("--inject", type=_folder, default=None, help="Run folder after knowledge injection.")
@click.option("--probes", type=click.Path(path_type=Path, exists=True), default=None,
              help="A probe folder (its probe.json) or a JSON file with per-item probe rows.")
@click.option("--out", type=OutPath(dir_okay=False), default=None,
              help="Write findings.json here (for `unisandbox report --findings`).")
@json_option
def findings(base: Path | None, stars: Path | None, stars_nofilter: Path | None,
             inject: Path | None, probes: Path | None, out: Path | None, as_json: bool) -> None:
    """Test each claim of the paper on measured runs: reproduced / not reproduced / not measured.

    Each claim's test (thresholds, intervals) is fixed and printed with its verdict; see
    docs/report.md. Pieces not given are "not measured".
    """
    from ..report.findings import evaluate_findings, findings_json, findings_table, save_findings
    from ..report.load import load_run

    given = {"base": base, "stars": stars, "stars_nofilter": stars_nofilter, "inject": inject}
    runs = {key: load_run(folder) for key, folder in given.items() if folder is not None}
    # a claim tested on a half-measured run says so, as report and compare do
    warnings = [f"--{key.replace('_', '-')} ({given[key]}) is not finished: {'; '.join(run.missing_tasks)}"
                for key, run in runs.items() if run.missing_tasks]
    for note in warnings:
        click.echo(f"warning: {note}", err=True)
    result = evaluate_findings({**runs, "probes": probes})
    if out is not None:
        save_findings(out, result, warnings)
    if as_json:
        echo_json(findings_json(result, warnings))
        return
    click.echo(findings_table(result, width=_width()))
    if out is not None:
        click.echo(f"\nfindings: {out}")
