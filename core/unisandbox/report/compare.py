"""Two runs side by side (e.g. before and after STARS): per task, level and mode, the
accuracies, the difference, whether the 95 % intervals separate, and a p-value: of the exact
McNemar test where both runs judged the same items (paired), else of the two-proportion z-test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..records import UNDERSTANDING
from ..run.aggregate import unit_label
from .load import RunData, iter_levels
from .stats import Cell, mcnemar_exact, p_text, pct, two_proportion_z

#: per (task, mode): each scoring unit (an item, or a pair's group) -> (its level, "yes"/"no"
#: as the results count it)
UnitVerdicts = dict[tuple[str, str], dict[str, tuple[str | None, str]]]

#: the ``test`` of a row, as the table shows it
TEST_LABELS = {"mcnemar": "McNemar", "z": "z-test"}


@dataclass
class CompareRow:
    task: str
    level: str
    mode: str
    a: Cell | None
    b: Cell | None
    #: (right only in B, right only in A) over the same units, when both runs' per-item
    #: verdicts measure exactly these cells; None: the runs are compared unpaired
    discordant: tuple[int, int] | None = None

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
    def test(self) -> str | None:
        """``mcnemar`` (paired, the same items), ``z`` (unpaired) or None (a side missing)."""
        if self.discordant is not None:
            return "mcnemar"
        return None if two_proportion_z(self.a, self.b) is None else "z"

    @property
    def p(self) -> float | None:
        if self.discordant is not None:
            return mcnemar_exact(*self.discordant)
        got = two_proportion_z(self.a, self.b)
        return None if got is None else got[1]

    def to_json(self) -> dict[str, Any]:
        discordant = (None if self.discordant is None else
                      {"b_only": self.discordant[0], "a_only": self.discordant[1]})
        return {"task": self.task, "level": self.level, "mode": self.mode,
                "a": self.a.to_json() if self.a else None, "b": self.b.to_json() if self.b else None,
                "diff": self.diff, "intervals_separate": self.separate, "p_value": self.p,
                "test": self.test, "discordant": discordant}

    def cells(self) -> list[str]:
        sep, test = self.separate, self.test
        return [self.task, self.level, _mode_label(self.mode),
                self.a.text() if self.a else "-", self.b.text() if self.b else "-",
                pct(self.diff, signed=True), "-" if sep is None else ("yes" if sep else "no"),
                p_text(self.p), "-" if test is None else TEST_LABELS[test]]


COMPARE_HEADERS = ["task", "level", "mode", "A", "B", "B − A", "CIs separate", "p", "test"]

#: what the p column means, under every comparison table (CLI, report.html, report.md)
P_NOTE = ("p: two-sided. McNemar: the exact McNemar test on the items the two runs judged "
          "differently, where both runs' per-item verdicts cover the same items (paired). "
          "z-test: the pooled two-proportion z-test (unpaired), where they do not (the runs drew "
          "other items, a judge error left an item out on one side, no samples.jsonl).")


def _mode_label(mode: str) -> str:
    return "U" if mode == UNDERSTANDING else f"G-{mode}"


def logged_units(config: Mapping[str, Any], records: Mapping[tuple[str, str, str], dict[str, Any]],
                 reference_scoring: bool) -> UnitVerdicts:
    """Each scoring unit's verdict from a run's samples.jsonl alone (the tasks' samples, which
    ``run.aggregate.unit_verdicts`` reads, need their plugins), as the aggregation counts it: a
    pair is right only when all its members are; a judge error is wrong under reference
    scoring, else the unit is left out (as it is of n). Tasks whose unit config.json does not
    record are left out."""
    unit_of = {task: ident.get("unit") for task, ident in (config.get("tasks") or {}).items()
               if isinstance(ident, dict)}
    grouped: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for (task, mode, sid), record in sorted(records.items()):
        unit = unit_of.get(task)
        if unit is None:
            continue
        key = str(record.get("group") or sid) if unit == "pair" else sid
        grouped.setdefault((task, mode), {}).setdefault(key, []).append(record)
    out: UnitVerdicts = {}
    for where, units in grouped.items():
        mine = out.setdefault(where, {})
        for key, members in units.items():
            label = unit_label(m.get("verdict") for m in members)
            if label == "error":
                if not reference_scoring:
                    continue
                label = "no"
            level = members[0].get("level")
            mine[key] = (None if level is None else str(level), label)
    return out


def paired_units(a: RunData, b: RunData) -> tuple[UnitVerdicts, UnitVerdicts]:
    """Both runs' unit verdicts, for the tasks whose items are the same in both (equal data
    hashes: an id names the same item); :func:`compare_results` pairs them."""
    def same(task: str) -> bool:
        ha, hb = ((run.config.get("tasks") or {}).get(task) or {} for run in (a, b))
        return bool(ha.get("data_sha256")) and ha.get("data_sha256") == hb.get("data_sha256")

    got = []
    for run in (a, b):
        units = logged_units(run.config, run.records(), run.results.get("scoring") == "reference")
        got.append({where: v for where, v in units.items() if same(where[0])})
    return got[0], got[1]


def _discordant(level: str, ua: Mapping[str, tuple[str | None, str]],
                ub: Mapping[str, tuple[str | None, str]], ca: Cell, cb: Cell) -> tuple[int, int] | None:
    """(right only in B, right only in A) when the two runs' units of this level are the same
    and are exactly what the two cells count; else None (the cells are compared unpaired)."""
    va = {k: label for k, (lv, label) in ua.items() if level == "all" or lv == level}
    vb = {k: label for k, (lv, label) in ub.items() if level == "all" or lv == level}
    if not va or va.keys() != vb.keys():
        return None
    for units, cell in ((va, ca), (vb, cb)):
        if (len(units), sum(v == "yes" for v in units.values())) != (cell.n, cell.n_yes):
            return None
    return (sum(va[k] == "no" and vb[k] == "yes" for k in va),
            sum(va[k] == "yes" and vb[k] == "no" for k in va))


def compare_results(a: dict[str, Any], b: dict[str, Any],
                    units: tuple[UnitVerdicts, UnitVerdicts] | None = None) -> list[CompareRow]:
    """Rows for every (task, level, mode) in either run; a side missing shows as None.
    ``units`` (from :func:`paired_units`) makes the rows measured on the same items paired."""
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
                pair = None
                if units is not None and ca is not None and cb is not None:
                    ua, ub = units[0].get((task, mode)), units[1].get((task, mode))
                    if ua and ub:
                        pair = _discordant(level, ua, ub, ca, cb)
                rows.append(CompareRow(task, level, mode, ca, cb, pair))
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
