"""``unisandbox train TRAINER``: a model and data in, a checkpoint folder out."""

from __future__ import annotations

from pathlib import Path

import click

from .common import OutPath, arg_option, echo_json, json_option
from .listing import component_help


def _help(ctx: click.Context, _param: click.Parameter, wanted: bool) -> None:
    """``--help`` is answered once TRAINER is known (``_trainer``), so that ``train inject
    --help`` can list that trainer's own arguments."""
    if wanted and not ctx.resilient_parsing:
        ctx.meta["unisandbox.help"] = True


def _trainer(ctx: click.Context, _param: click.Parameter, name: str | None) -> str | None:
    """Processed right after ``--help`` and before the required options, so help never
    asks for --model or --out first."""
    if ctx.meta.get("unisandbox.help"):
        text = ctx.get_help()
        if name:
            text = "\n".join(component_help("trainer", name)) + "\n\n" + text
        click.echo(text)
        ctx.exit()
    return name


@click.command(context_settings={"show_default": True}, add_help_option=False)
@click.argument("trainer_name", metavar="TRAINER", required=False, callback=_trainer)
@click.option("-h", "--help", is_flag=True, expose_value=False, is_eager=False, callback=_help,
              help="Show this message (after TRAINER: also that trainer's arguments) and exit.")
@click.option("--model", required=True, help="Model to start from (see `unisandbox models list`).")
@arg_option("model", "model factory (e.g. path=DIR)")
@arg_option("train", "trainer (`unisandbox train TRAINER --help` lists them)")
@click.option("--out", required=True, type=OutPath(file_okay=False),
              help="Training folder; running again on it resumes.")
@click.option("--quiet", is_flag=True, help="No progress bars (for trainers that show them).")
@json_option
def train(trainer_name: str | None, model: str, model_args: tuple[str, ...],
          train_args: tuple[str, ...], out: Path, quiet: bool, as_json: bool) -> None:
    """Train a model with a registered trainer (see `unisandbox trainers list`;
    `unisandbox train TRAINER --help` lists that trainer's arguments).

    \b
    Example:
      unisandbox train inject --model query-tiny --train-arg data=knowledge.jsonl \\
          --out runs/inject
    """
    if trainer_name is None:
        raise click.UsageError("Missing argument 'TRAINER' (see `unisandbox trainers list`).")
    from ..distributed import get_dist
    from ..run.config import parse_pairs
    from ..training import run_trainer

    result = run_trainer(trainer_name, model_name=model,
                         model_args=parse_pairs(model_args, "--model-arg"),
                         train_args=parse_pairs(train_args, "--train-arg"), out=out,
                         progress=not quiet)
    if not get_dist().is_main:  # under torchrun one process reports (the others' copies differ)
        return
    if as_json:
        echo_json({"checkpoint": str(result.checkpoint), "metrics": result.metrics})
    else:
        click.echo(f"checkpoint: {result.checkpoint}")
        for key, value in sorted(result.metrics.items()):
            click.echo(f"  {key}: {value}")
