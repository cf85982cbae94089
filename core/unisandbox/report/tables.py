"""The results table (per task x level: U, G per mode, gap U − G, errors, n, chance), as data
shared by the HTML, Markdown and terminal writers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..records import UNDERSTANDING
from .load import iter_levels
from .stats import Cell, pct


@dataclass
class ResultRow:
    task: str
    level: str
    chance: float | None
    understanding: Cell | None
    generation: dict[str, Cell | None]
    gap: dict[str, float | None]

    def errors(self) -> str:
        parts = [(m, c.n_error) for m, c in (*self.generation.items(), ("U", self.understanding))
                 if c is not None and c.n_error]
        return ", ".join(f"{n} {m}" for m, n in parts) or "0"

    def n_text(self) -> str:
        ns = {c.n for c in (*self.generation.values(), self.understanding) if c is not None}
        return "/".join(str(n) for n in sorted(ns)) or "0"


def result_rows(results: dict[str, Any]) -> list[ResultRow]:
    modes = list(results.get("modes", []))
    rows = []
    for task, entry in results["tasks"].items():
        for level, cells in iter_levels(entry["levels"]):
            u = Cell.from_json(cells.get(UNDERSTANDING))
            gen = {m: Cell.from_json(cells.get(m)) for m in modes}
            gap = {m: (u.accuracy - c.accuracy) if u and c and u.accuracy is not None
                   and c.accuracy is not None else None for m, c in gen.items()}
            rows.append(ResultRow(task, level, entry.get("chance"), u, gen, gap))
    return rows


def result_headers(modes: Sequence[str]) -> list[str]:
    return ["task", "level", "U", *[f"G-{m}" for m in modes], *[f"gap U−G-{m}" for m in modes],
            "errors", "n", "chance"]


def result_cells(row: ResultRow, modes: Sequence[str]) -> list[str]:
    """One row as text; accuracies in percent with their 95 % interval."""
    return [row.task, row.level, row.understanding.text() if row.understanding else "-",
            *[(row.generation.get(m) or Cell(0, 0, 0, 0, 1)).text() for m in modes],
            *[pct(row.gap.get(m), signed=True) for m in modes],
            row.errors(), row.n_text(), pct(row.chance)]


FACETS_NOTE = ("Per picture, which parts of the answer the judge found right (the glyph judge: "
               "the object, i.e. kind and colour, and the count). A generator that reads the "
               "object out of a reasoning prompt but not the number sits near the count's chance.")


def facet_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of facet accuracies per task, level and mode; no rows when the judge
    reported no facets. Facets are per picture, so mapping pairs count as two."""
    modes = list(results.get("modes", []))
    names: list[str] = []
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for task, entry in results["tasks"].items():
        for level, cells in iter_levels(entry["levels"]):
            for mode in modes:
                facets = (cells.get(mode) or {}).get("facets") or {}
                if facets:
                    found.append((task, level, mode, facets))
                    names += [n for n in facets if n not in names]
    names.sort(key=lambda n: ({"object": 0, "count": 1}.get(n, 2), n))
    rows = [[task, level, f"G-{mode}", *[
        f"{pct(facets[n]['accuracy'])} (n {facets[n]['n']})" if n in facets else "-" for n in names]]
        for task, level, mode, facets in found]
    return ["task", "level", "mode", *names], rows
