"""The probe figures (matplotlib, object API on the Agg canvas: no pyplot state, no display).

Every figure plots numbers that are also in ``probe.json``; a figure is a view, never the record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: What each per-layer series is called in legends.
SERIES = {"baseline": "baseline (last text token)", "queries_mean": "queries (mean)",
          "queries_max": "queries (best)", "context": "context (last position)"}
_COLOURS = {"baseline": "#7f7f7f", "queries_mean": "#1f77b4", "queries_max": "#aec7e8",
            "context": "#d62728"}
_HATCH = ("", "//", "..", "xx")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def _short(value: float) -> str:
    """A cell label: two decimals, three below 0.01, a dot below 0.001 (the colour says it)."""
    return f"{value:.2f}" if value >= 0.01 else f"{value:.3f}" if value >= 0.001 else "·"


def heatmap(cells: Mapping[str, Mapping[str, Any]], title: str, path: Path) -> Path:
    """Mean relevant-word probability over layer x position, one panel per mode."""
    import numpy as np

    modes = list(cells)
    mats = {m: np.asarray(cells[m]["mean"]["relevant"], dtype=float) for m in modes}
    vmax = max(max(float(a.max()) for a in mats.values()), 1e-6)
    layers, positions = next(iter(mats.values())).shape
    fig = _figure(max(3.0, 1.0 + 0.55 * positions) * len(modes) + 1.0, 1.2 + 0.45 * layers)
    axes = fig.subplots(1, len(modes), squeeze=False)[0]
    image = None
    for ax, mode in zip(axes, modes, strict=True):
        mat = mats[mode]
        image = ax.imshow(mat, origin="lower", aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax)
        ax.set_xticks(range(mat.shape[1]), cells[mode]["labels"], rotation=45, fontsize=8)
        ax.set_yticks(range(mat.shape[0]))
        ax.set_xlabel("position")
        ax.set_ylabel("layer (0 = embeddings)")
        ax.set_title(f"{mode} (n={cells[mode]['n']})", fontsize=10)
        if mat.size <= 160:
            for (row, col), value in np.ndenumerate(mat):
                ax.text(col, row, _short(value), ha="center", va="center", fontsize=6,
                        color="white" if value < 0.6 * vmax else "black")
    fig.colorbar(image, ax=list(axes), label="P(relevant words)")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def layer_bars(cells: Mapping[str, Mapping[str, Any]], title: str, path: Path) -> Path:
    """Per layer: relevant probability at the baseline vs the queries (or the context), and the
    task's other answers at the same queries (the control), per mode."""
    import numpy as np

    modes = list(cells)
    kinds = [k for k in ("baseline", "queries_mean", "context")
             if all(k in cells[m]["per_layer"] for m in modes)]
    series = [(kind, False) for kind in kinds]
    series += [(kind, True) for kind in ("queries_mean", "context")
               if all(kind in cells[m].get("per_layer_control", {}) for m in modes)]
    layers = len(cells[modes[0]]["per_layer"][kinds[0]])
    width = 0.8 / (len(series) * len(modes))
    fig = _figure(max(6.0, 0.9 * layers + 2.0), 4.2)
    ax = fig.subplots()
    x = np.arange(layers)
    i = 0
    for m_index, mode in enumerate(modes):
        for kind, control in series:
            values = cells[mode]["per_layer_control" if control else "per_layer"][kind]
            ax.bar(x - 0.4 + width * (i + 0.5), values, width,
                   color="#ffffff" if control else _COLOURS[kind],
                   hatch=_HATCH[m_index % len(_HATCH)], edgecolor=_COLOURS[kind] if control else "black",
                   linewidth=0.8 if control else 0.4,
                   label=f"{SERIES[kind]}{', other answers' if control else ''}, {mode}")
            i += 1
    chance = np.mean([cells[m]["chance"]["relevant"] for m in modes])
    ax.axhline(chance, color="black", linestyle="--", linewidth=0.8, label="uniform guess")
    ax.set_xticks(x, [str(v) for v in x])
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("P(relevant words)")
    ax.set_title(title, fontsize=11)
    fig.legend(loc="outside lower center", fontsize=7, ncols=2)
    return _save(fig, path)


def transfer_lines(panels: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]],
                   kind: str, title: str, path: Path) -> Path:
    """One panel per task: the ``kind`` series per layer, before (dashed) and after (solid)."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(4.2 * len(panels) + 0.5, 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    # one shared scale from every panel's values (a per-panel limit set while the axes are
    # shared would freeze the scale at the first panel's and clip the others)
    top = max((v for series in panels.values() for sides in series.values()
               for side in ("before", "after") for v in sides[side]), default=0.0)
    for ax, (task, series) in zip(axes, panels.items(), strict=True):
        for index, (mode, sides) in enumerate(series.items()):
            colour = f"C{index}"
            for side, style, marker, alpha in (("before", ":", "s", 0.55), ("after", "-", "o", 1.0)):
                values = sides[side]
                ax.plot(range(len(values)), values, style, color=colour, marker=marker,
                        markersize=3, alpha=alpha, label=f"{mode}, {side}")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("layer (0 = embeddings)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"P(relevant words), {SERIES[kind]}")
    axes[0].set_ylim(0.0, top * 1.08 or 1.0)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)
