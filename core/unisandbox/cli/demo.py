"""``unisandbox demo``: the whole sandbox study on a CPU (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import OutPath, echo_json, json_option

#: where each size goes by default: a quick check first must not block the full demo after it
#: (a folder is resumed only under the options that made it)
DEFAULT_OUT = Path("runs/demo")
DEFAULT_QUICK_OUT = Path("runs/demo-quick")


@click.command()
@click.option("--out", type=OutPath(file_okay=False), default=None,
              help=f"Demo folder; running again on it (same options) resumes.  [default: "
                   f"{DEFAULT_OUT}; {DEFAULT_QUICK_OUT} with --quick]")
@click.option("--quick", is_flag=True,
              help="A reduced size of every stage, a tiny model pretrained here included (about "
                   "90 s on 2 idle cores): checks the pipeline, the numbers mean little.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of every stage (other than 0: the model is pretrained here too).")
@click.option("--pretrain", is_flag=True,
              help="Pretrain the sandbox model from scratch in OUT (about 45 minutes on 2 CPU "
                   "cores) instead of using the checkpoint shipped with unisandbox-query.")
@click.option("--quiet", is_flag=True, help="No progress bars (stage lines still print).")
@json_option
def demo(out: Path | None, quick: bool, seed: int, pretrain: bool, quiet: bool,
         as_json: bool) -> None:
    """Reproduce the paper's findings in the sandbox world, end to end.

    \b
    Stages: pretrain the tiny query model -> measure U, G-normal, G-think on math 1-3,
    mapping 1-3 and knowledge -> inject the test characters -> measure knowledge again ->
    STARS with a curriculum, filtered by the model's own answer against its own
    description of each image -> STARS without the filter (ablation) -> probes ->
    findings table and report (OUT/report/report.html).

    The pretrained model is the default query-tiny checkpoint shipped with unisandbox-query
    (about 6 minutes in all on 2 CPU cores); --pretrain (or a seed other than 0) trains it
    from scratch with the same recipe first (about 45 minutes more). Each stage prints the
    time elapsed and an estimate of the time left (at the pace of the stages done so far) on
    stderr; a finished stage is skipped when the demo runs again on the same --out with the
    same options (a folder made with others is refused, so a full demo never reports a quick
    one's stages). The findings table goes to stdout; --json prints the folder, the report,
    the stage times and the findings (as `unisandbox findings --json` prints them).
    """
    from ..demo import Demo
    from ..report.findings import Finding, findings_table
    from .report import _width

    if out is None:
        out = DEFAULT_QUICK_OUT if quick else DEFAULT_OUT
    result = Demo(out, quick=quick, seed=seed, pretrain=pretrain,
                  progress=not quiet and not as_json).run()
    if as_json:
        echo_json(result)
        return
    if result.get("findings"):
        found = [Finding(**f) for f in result["findings"]["findings"]]
        for warning in result["findings"]["warnings"]:
            click.echo(f"warning: {warning}", err=True)
        click.echo(findings_table(found, width=_width()))
    click.echo(f"\nreport: {result['report']}")
