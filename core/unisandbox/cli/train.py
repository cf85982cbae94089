"""``unisandbox train TRAINER``: a model and data in, a checkpoint folder out."""

from __future__ import annotations

from pathlib import Path

import click

from .common import arg_option, echo_json, json_option


@click.command(context_settings={"show_default": True})
@click.argument("trainer_name", metavar="TRAINER")
@click.option("--model", required=True, help="Model to start from (see `unisandbox models list`).")
@arg_option("model", "model factory (e.g. path=DIR)")
@arg_option("train", "trainer (see PLUGINS.md or the trainer's docs)")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Training folder; running again on it resumes.")
@click.option("--quiet", is_flag=True, help="No progress bars (for trainers that show them).")
@json_option
def train(trainer_name: str, model: str, model_args: tuple[str, ...],
          train_args: tuple[str, ...], out: Path, quiet: bool, as_json: bool) -> None:
    """Train a model with a registered trainer (see `unisandbox trainers list`).

    \b
    Example:
      unisandbox train inject --model query-tiny --train-arg data=knowledge.jsonl \\
          --out runs/inject
    """
    from ..run.config import parse_pairs
    from ..training import run_trainer

    result = run_trainer(trainer_name, model_name=model,
                         model_args=parse_pairs(model_args, "--model-arg"),
                         train_args=parse_pairs(train_args, "--train-arg"), out=out,
                         progress=not quiet)
    if as_json:
        echo_json({"checkpoint": str(result.checkpoint), "metrics": result.metrics})
    else:
        click.echo(f"checkpoint: {result.checkpoint}")
        for key, value in sorted(result.metrics.items()):
            click.echo(f"  {key}: {value}")
