"""Bar charts of U vs G per mode, per level, with 95 % intervals (matplotlib, Agg, PNG bytes)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from .stats import Cell
from .tables import ResultRow

#: fixed colours so every chart in a report reads the same way
COLOURS = {"U": "#4c72b0", "normal": "#dd8452", "think": "#55a868"}
EXTRA = ["#c44e52", "#8172b3", "#937860", "#da8bc3"]


def _series(modes: Sequence[str]) -> list[tuple[str, str]]:
    """(label, colour) per bar in a group: U first, then each generation mode."""
    out = [("U", COLOURS["U"])]
    for i, mode in enumerate(modes):
        out.append((f"G-{mode}", COLOURS.get(mode, EXTRA[i % len(EXTRA)])))
    return out


def level_chart(task: str, rows: Sequence[ResultRow], modes: Sequence[str]) -> bytes:
    """One task: a group of bars per level (U, G-normal, G-think), Wilson 95 % error bars,
    chance as a dashed line. Returns PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    series = _series(modes)
    fig = Figure(figsize=(max(3.6, 1.2 + 1.1 * len(rows)), 3.0), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for s, (label, colour) in enumerate(series):
        xs, ys, lo, hi = [], [], [], []
        for i, row in enumerate(rows):
            cell: Cell | None = row.understanding if label == "U" else row.generation.get(label[2:])
            if cell is None or cell.accuracy is None:
                continue
            xs.append(i - 0.4 + width * (s + 0.5))
            ys.append(100 * cell.accuracy)
            # max(0, .): a Wilson bound can sit a rounding error inside the point estimate
            lo.append(max(0.0, 100 * (cell.accuracy - cell.lo)))
            hi.append(max(0.0, 100 * (cell.hi - cell.accuracy)))
        ax.bar(xs, ys, width=width * 0.92, color=colour, label=label,
               yerr=[lo, hi], capsize=2.5, error_kw={"elinewidth": 0.9, "ecolor": "#333333"})
    chance = rows[0].chance if rows else None
    if chance is not None:
        ax.axhline(100 * chance, color="#777777", linestyle="--", linewidth=0.9, label="chance")
    ax.set_xticks(range(len(rows)), [f"level {r.level}" if r.level != "all" else "all" for r in rows])
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(task, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=len(series) + 1,
              frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
