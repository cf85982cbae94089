"""Two runs side by side (e.g. before and after STARS): per task, level and mode, the
accuracies, the difference, whether the 95 % intervals separate, and a z-test p-value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..records import UNDERSTANDING
from .load import iter_levels
from .stats import Cell, p_text, pct, two_proportion_z


@dataclass
class CompareRow:
    task: str
    level: str
    mode: str
    a: Cell | None
    b: Cell | None

    @property
    def diff(self) -> float | None:
        if self.a is None or self.b is None or self.a.accuracy is None or self.b.accuracy is None:
            return None
        return self.b.accuracy - self.a.accuracy

    @property
    def separate(self) -> bool | None:
        """The two 95 % intervals do not overlap (a conservative 'really different')."""
        if self.a is None or self.b is None or not self.a.n or not self.b.n:
            return None
        return self.a.hi < self.b.lo or self.b.hi < self.a.lo

    @property
    def p(self) -> float | None:
        got = two_proportion_z(self.a, self.b)
        return None if got is None else got[1]

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "level": self.level, "mode": self.mode,
                "a": self.a.to_json() if self.a else None, "b": self.b.to_json() if self.b else None,
                "diff": self.diff, "intervals_separate": self.separate, "p_value": self.p}

    def cells(self) -> list[str]:
        sep = self.separate
        return [self.task, self.level, _mode_label(self.mode),
                self.a.text() if self.a else "-", self.b.text() if self.b else "-",
                pct(self.diff, signed=True), "-" if sep is None else ("yes" if sep else "no"),
                p_text(self.p)]


COMPARE_HEADERS = ["task", "level", "mode", "A", "B", "B − A", "CIs separate", "p (z-test)"]


def _mode_label(mode: str) -> str:
    return "U" if mode == UNDERSTANDING else f"G-{mode}"


def compare_results(a: dict[str, Any], b: dict[str, Any]) -> list[CompareRow]:
    """Rows for every (task, level, mode) in either run; a side missing shows as None."""
    modes = [*dict.fromkeys([*a.get("modes", []), *b.get("modes", [])]), UNDERSTANDING]
    tasks = list(dict.fromkeys([*a["tasks"], *b["tasks"]]))
    rows = []
    for task in tasks:
        la = a["tasks"].get(task, {}).get("levels", {})
        lb = b["tasks"].get(task, {}).get("levels", {})
        merged = {**{k: {} for k in lb}, **{k: {} for k in la}}
        for level, _ in iter_levels(merged):
            for mode in modes:
                ca = Cell.from_json(la.get(level, {}).get(mode))
                cb = Cell.from_json(lb.get(level, {}).get(mode))
                if ca is None and cb is None:
                    continue
                rows.append(CompareRow(task, level, mode, ca, cb))
    return rows


def comparability(a: dict[str, Any], b: dict[str, Any], rows: list[CompareRow]) -> list[str]:
    """What a reader of the comparison must know: tasks whose two runs drew different items
    (another seed, size or file: the difference is not on the same items), and judges that
    differ. ``a`` and ``b`` are the runs' config.json."""
    notes = []
    shared = sorted({r.task for r in rows if r.a is not None and r.b is not None})
    items_a, items_b = a.get("tasks") or {}, b.get("tasks") or {}
    for task in shared:
        ha = (items_a.get(task) or {}).get("data_sha256")
        hb = (items_b.get(task) or {}).get("data_sha256")
        if ha and hb and ha != hb:
            notes.append(f"{task}: A and B drew different items (their data hashes differ: another "
                         "seed, size or file), so B − A is not measured on the same items")
    if a.get("judge_identity") and b.get("judge_identity") and a["judge_identity"] != b["judge_identity"]:
        notes.append("A and B were judged by different judges")
    scoring = [bool((c.get("run") or {}).get("reference_scoring")) for c in (a, b)]
    if scoring[0] != scoring[1]:
        notes.append("A and B count judge errors differently (one with --reference-scoring: "
                     "errors wrong; the other: errors left out of n)")
    return notes
