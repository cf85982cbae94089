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
    asks for --model or --out first, and a missing TRAINER is named before them."""
    if ctx.meta.get("unisandbox.help"):
        text = ctx.get_help()
        if name:
            text = "\n".join(component_help("trainer", name)) + "\n\n" + text
        click.echo(text)
        ctx.exit()
    if name is None and not ctx.resilient_parsing:
        raise click.UsageError("Missing argument 'TRAINER' (see `unisandbox trainers list`).", ctx)
    return name


class _TrainCommand(click.Command):
    """train's own ``--help`` (an ordinary option, so that it answers once TRAINER is known)
    counts as its help option: usage errors end with "Try 'unisandbox train --help' for
    help." as every other command's do."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return next((p for p in self.params if isinstance(p, click.Option) and "--help" in p.opts), None)

    def get_help_option_names(self, ctx: click.Context) -> list[str]:
        option = self.get_help_option(ctx)
        return list(option.opts) if option is not None else []

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return list(self.params)  # the help option is among them already


@click.command(cls=_TrainCommand, context_settings={"show_default": True}, add_help_option=False)
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
    if trainer_name is None:  # _trainer refuses it first; this narrows the type
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
