"""``probe-transfer``: the lens before and after knowledge injection, forward vs inverse.

It reads two ``probe-lens`` folders (the base model's and the injected model's, both probed on
the same knowledge tasks) and compares them sample by sample: the same sample ids, modes and
positions, so any difference is the model's. No model loads here: the lens already ran, and a
user who has both folders (``unisandbox demo`` writes them) compares them in a second.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unisandbox.errors import DataError, DataWarning, UserError
from unisandbox.paths import safe_name
from unisandbox.protocols import Model
from unisandbox.protocols.analysis import RESULT_FILE, AnalysisTask, Progress, no_progress
from unisandbox.run.store import read_json

from . import figures
from .lens import CONTROL, RELEVANT, _mean, _round, per_layer, write_result
from .section import Block, Figure, Heading, Paragraph, Table, write_section


def read_lens(folder: str | Path, what: str) -> dict[str, Any]:
    """A probe-lens result, with errors that name the folder and the field."""
    path = Path(folder).expanduser() / RESULT_FILE
    if not path.is_file():
        raise UserError(f"probe-transfer: {what}={folder} holds no {RESULT_FILE}; give a folder "
                        "written by `unisandbox probe --task probe-lens`")
    data = read_json(path)
    if not isinstance(data, dict) or data.get("probe") != "probe-lens":
        raise DataError(path, None, "probe", "not a probe-lens result")
    if not isinstance(data.get("samples"), list):
        raise DataError(path, None, "samples", "missing or not a list")
    for i, record in enumerate(data["samples"]):
        _check_sample(path, i, record)
    return data


def _check_sample(path: Path, i: int, record: Any) -> None:
    """One probed sample as probe-lens writes it; a hand-edited one is named, not a traceback."""
    where = f"samples[{i}]"
    if not isinstance(record, dict):
        raise DataError(path, None, where, "expected an object")
    for key, kind in (("task", str), ("mode", str), ("prompt", str), ("labels", list), ("prob", dict)):
        if not isinstance(record.get(key), kind):
            raise DataError(path, None, f"{where}.{key}", f"missing or not {kind.__name__}")
    if not isinstance(record.get("id"), (str, int)) or isinstance(record.get("id"), bool):
        raise DataError(path, None, f"{where}.id", "missing or not a string")
    width = len(record["labels"])
    for group in (RELEVANT, CONTROL):
        grid = record["prob"].get(group)
        if grid is None and group == CONTROL:
            continue
        if not (isinstance(grid, list) and grid and all(
                isinstance(row, list) and len(row) == width
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
                for row in grid)):
            raise DataError(path, None, f"{where}.prob.{group}", "expected [layers][positions] "
                            f"numbers, {width} positions a layer (one per label)")


class TransferProbe(AnalysisTask):
    """Compare two probe-lens folders sample by sample (before vs after injection)."""

    name = "probe-transfer"

    def __init__(self, before: str, after: str) -> None:
        self.before_dir, self.after_dir = Path(before), Path(after)
        self.before = read_lens(before, "before")
        self.after = read_lens(after, "after")

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family,
                "before": str(self.before_dir), "after": str(self.after_dir)}

    def analyze(self, model: Model | None, modes: Sequence[str], out_dir: Path,
                progress: Progress = no_progress) -> dict[str, Any]:
        pick = [r for r in self.before["samples"] if r["mode"] in modes], \
            [r for r in self.after["samples"] if r["mode"] in modes]
        cells = compare(*pick)
        if not cells:
            raise UserError(f"probe-transfer: {self.before_dir} and {self.after_dir} share no "
                            f"(task, sample, mode) in mode {', '.join(modes)}; probe the same tasks "
                            "with the same arguments")
        for note in unmatched(*pick):
            warnings.warn(f"probe-transfer: {note}", DataWarning, stacklevel=2)
        progress("compare", 1, 1)
        result = {"probe": self.name, "before": {"folder": str(self.before_dir),
                                                  "model": self.before.get("model")},
                  "after": {"folder": str(self.after_dir), "model": self.after.get("model")},
                  "cells": cells}
        out_dir.mkdir(parents=True, exist_ok=True)
        write_result(out_dir, result)
        write_section(transfer_section(result, out_dir), out_dir)
        table = summary_table(cells)
        return {"probe": self.name, "cells": [{k: c[k] for k in ("task", "mode", "n", "best")}
                                               for c in cells], "table": table}


def compare(before: Sequence[Mapping[str, Any]],
            after: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, mode): mean relevant probability per layer and position, before and after,
    over the samples both folders probed (same labels), and the per-layer series."""
    index = {(r["task"], r["mode"], r["id"]): r for r in before}
    pairs: dict[tuple[str, str], list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = defaultdict(list)
    for r in after:
        b = index.get((r["task"], r["mode"], r["id"]))
        if b is not None and b["labels"] == r["labels"] and b["prompt"] == r["prompt"]:
            pairs[r["task"], r["mode"]].append((b, r))
    cells = []
    for (task, mode), members in pairs.items():
        labels = members[0][0]["labels"]
        if any(b["labels"] != labels for b, _ in members):
            continue
        sides = {side: _mean([pair[k]["prob"][RELEVANT] for pair in members])
                 for k, side in enumerate(("before", "after"))}
        series = {side: per_layer(mean, labels) for side, mean in sides.items()}
        key = "queries_mean" if "queries_mean" in series["after"] else "context"
        delta = [_round(a - b) for a, b in zip(series["after"][key], series["before"][key], strict=True)]
        layer = max(range(len(delta)), key=lambda i: series["after"][key][i])
        best = {"layer": layer, "series": key, "before": series["before"][key][layer],
                "after": series["after"][key][layer], "delta": delta[layer]}
        if "baseline" in series["after"]:
            best["baseline_before"] = series["before"]["baseline"][layer]
            best["baseline_after"] = series["after"]["baseline"][layer]
        control = {}
        having = [pair for pair in members if all(CONTROL in pair[k]["prob"] for k in (0, 1))]
        if having:  # items whose kind has other answers in the vocabulary
            control = {side: per_layer(_mean([pair[k]["prob"][CONTROL] for pair in having]), labels)
                       for k, side in enumerate(("before", "after"))}
            best["control_before"] = control["before"][key][layer]
            best["control_after"] = control["after"][key][layer]
            best["n_control"] = len(having)
        cells.append({"task": task, "mode": mode, "n": len(members), "labels": labels,
                      "mean": sides, "per_layer": series, "per_layer_control": control,
                      "delta": delta, "best": best,
                      "n_before_only": sum(1 for k in index if k[:2] == (task, mode)) - len(members)})
    return sorted(cells, key=lambda c: (c["task"], c["mode"]))


def unmatched(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> list[str]:
    """What one folder probed and the other did not (left out of the comparison): a control
    that moved only because the items differ must not read as the model's doing."""
    keys = [{(r["task"], r["mode"], str(r.get("id"))) for r in side} for side in (before, after)]
    notes = []
    for name, only in (("before", keys[0] - keys[1]), ("after", keys[1] - keys[0])):
        if only:
            groups = sorted({f"{t} {m}" for t, m, _ in only})
            notes.append(f"{len(only)} sample(s) probed only {name} ({', '.join(groups)}) are left "
                         "out; probe both folders with the same tasks, items and modes")
    return notes


def summary_table(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def fmt(b: Mapping[str, Any], key: str) -> str:
        return f"{b[key]:.4f}" if key in b else "-"

    rows = []
    for c in cells:
        b = c["best"]
        rows.append([c["task"], c["mode"], c["n"], b["layer"], fmt(b, "before"), fmt(b, "after"),
                     f"{b['delta']:+.4f}", fmt(b, "control_before"), fmt(b, "control_after"),
                     fmt(b, "baseline_before"), fmt(b, "baseline_after")])
    return {"headers": ["task", "mode", "n", "layer", "before", "after", "after - before",
                        "other answers before", "other answers after", "baseline before",
                        "baseline after"], "rows": rows}


def transfer_section(result: Mapping[str, Any], out_dir: Path) -> list[Block]:
    cells = result["cells"]
    table = summary_table(cells)
    blocks: list[Block] = [
        Heading("Knowledge transfer: the lens before and after injection"),
        Paragraph(f"Before: {result['before']['folder']}; after: {result['after']['folder']}. "
                  "Mean probability of each sample's relevant words (the injected attribute) at "
                  "the query tokens (mean over queries; the context position for models without "
                  "queries), at the layer where it is highest after injection, over the samples "
                  "both folders probed; 'other answers' is the same for the other items' "
                  "answers (the control: injected knowledge should raise this item's answer, "
                  "not every answer)."),
        Table(tuple(table["headers"]), tuple(tuple(r) for r in table["rows"])),
    ]
    kind = "queries_mean" if all("queries_mean" in c["per_layer"]["after"] for c in cells) else "context"
    panels: dict[str, dict[str, dict[str, Sequence[float]]]] = defaultdict(dict)
    for c in cells:
        if kind in c["per_layer"]["after"]:
            panels[c["task"]][c["mode"]] = {s: c["per_layer"][s][kind] for s in ("before", "after")}
    if panels:
        path = figures.transfer_lines(panels, kind, "relevant-word probability, before vs after",
                                      out_dir / f"transfer_{safe_name(kind)}.png")
        blocks.append(Figure(path, "Per layer, the relevant-word probability before (dashed) and "
                                   "after (solid) knowledge injection, per task and mode."))
    return blocks
