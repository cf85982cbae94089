"""Small pieces every command shares: tables, JSON output, repeated k=v options."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned text table (no extra dependency)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def arg_option(name: str, what: str) -> Callable[..., Any]:
    return click.option(f"--{name}-arg", f"{name}_args", multiple=True, metavar="KEY=VALUE",
                        help=f"Argument for the {what}; repeat for several. Values parse as "
                             "JSON scalars or lists when they can (3, 0.5, true, [1,2]), else as text.")


class OutPath(click.Path):
    """Where a command writes: a path that names something. An empty ``--out ""`` would be
    the current folder, and the run's files would land among the user's own."""

    def __init__(self, *, file_okay: bool = True, dir_okay: bool = True) -> None:
        super().__init__(path_type=Path, file_okay=file_okay, dir_okay=dir_okay)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; name the folder (or file) to write", param, ctx)
        return super().convert(value, param, ctx)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"
