"""``unisandbox probe``: run an analysis task (a probe) on a model's internals."""

from __future__ import annotations

from pathlib import Path

import click

from .common import OutPath, arg_option, echo_json, json_option, table


@click.command()
@click.option("--model", default=None,
              help="Registered model name (see `unisandbox models list`); probes that only "
                   "compare earlier probe folders need none.")
@arg_option("model", "model factory (e.g. path=DIR, init=scratch)")
@click.option("--task", "task_name", required=True,
              help="The probe (an analysis task; see `unisandbox tasks list`).")
@arg_option("task", "probe (e.g. task=math-1, world=glyph, top_k=5, threshold=0.05)")
@click.option("--mode", "modes", default="normal,think", show_default=True, metavar="MODES",
              help="Comma-separated generation modes to probe: normal, think.")
@click.option("--out", required=True, type=OutPath(file_okay=False),
              help="Folder for probe.json, the figures and the report section.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@json_option
def probe(model: str | None, model_args: tuple[str, ...], task_name: str,
          task_args: tuple[str, ...], modes: str, out: Path, quiet: bool, as_json: bool) -> None:
    """Probe what a model's query tokens or context positions encode.

    \b
    Example (the logit lens on the sandbox model, math level 1):
      unisandbox probe --model query-tiny --task probe-lens --task-arg task=math-1 \\
          --task-arg world=glyph --mode normal,think --out runs/lens-math1
    Compare two lens folders (before and after knowledge injection):
      unisandbox probe --task probe-transfer --task-arg before=runs/lens-base \\
          --task-arg after=runs/lens-injected --out runs/transfer

    Writes config.json, probe.json (every number), PNG figures, section.md and section.html
    (the part `unisandbox report` includes) into --out.
    """
    from ..errors import UserError
    from ..run.config import Component, parse_modes, parse_pairs
    from ..run.probe import run_probe

    if model is None and model_args:
        raise UserError("--model-arg given without --model")
    if not parse_modes(modes):
        raise UserError("--mode: a probe reads generation contexts; give normal, think or both")
    result = run_probe(
        Component(task_name, parse_pairs(task_args, "--task-arg")), out,
        model=None if model is None else Component(model, parse_pairs(model_args, "--model-arg")),
        modes=parse_modes(modes), progress=not quiet and not as_json,
    )
    if as_json:
        echo_json(result)
        return
    shown = result.get("table")
    if shown:
        click.echo(table(shown["rows"], shown["headers"]))
    held = sorted(p.name for p in out.iterdir() if p.name != "config.json")
    click.echo(f"\nprobe folder: {out} ({', '.join(held[:6])}{', ...' if len(held) > 6 else ''})")
