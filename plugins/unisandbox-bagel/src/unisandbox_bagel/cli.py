"""``unisandbox-bagel``: checkpoint tools that need no model loaded.

User errors print one line and exit 2, like the ``unisandbox`` CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from unisandbox.errors import UserError

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unisandbox-bagel")
def cli() -> None:
    """BAGEL checkpoint tools (see the unisandbox-bagel README)."""


@cli.command("complete-checkpoint")
@click.option("--base", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The base checkpoint folder (e.g. BAGEL-7B-MoT).")
@click.option("--partial", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The fine-tuned folder whose weights lack some tensors.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where to write the completed checkpoint (default: --partial, in place).")
@click.option("--weights", default=None,
              help="Weights file name in --partial (default model.safetensors, else ema.safetensors).")
def complete_checkpoint_command(base: Path, partial: Path, out: Path | None, weights: str | None) -> None:
    """Fill a partial checkpoint's missing tensors from the base and cast to bfloat16.

    Writes the weights atomically, copies the base's configs, tokenizer and ae.safetensors
    where the output lacks them, and writes completion_report.json listing every filled tensor.
    """
    from .completion import complete_checkpoint

    complete_checkpoint(base, partial, out, weights=weights, log=click.echo)


@cli.command("make-tiny")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
def make_tiny(folder: Path, seed: int) -> None:
    """Write a tiny random BAGEL checkpoint (release layout; draws up to 128 px, reads up to 64 px) for trying the plugin out."""
    from .tiny import write_tiny_checkpoint

    if folder.exists() and any(folder.iterdir()):
        raise UserError(f"{folder}: not empty; give a new folder")
    write_tiny_checkpoint(folder, seed=seed)
    click.echo(f"wrote a tiny BAGEL checkpoint to {folder}")


def main(argv: list[str] | None = None) -> int:
    from unisandbox.cli.main import run_command

    return run_command(cli, argv, "unisandbox-bagel")


if __name__ == "__main__":
    sys.exit(main())
