"""The findings table: each claim of the paper, tested on measured numbers, with a verdict.

Inputs are named results (``results.json`` dicts, run folders, or a probe summary)::

    {"base": ..., "stars": ..., "stars_nofilter": ..., "inject": ..., "probes": ...}

Any piece may be missing; a claim whose numbers are missing is "not measured". Every test is
fixed here, stated in words next to its verdict, and never adjusted to the data: a claim that
does not hold in a run is reported "not reproduced".

Verdict rule for a claim made of several parts (e.g. math and mapping): any measured part that
fails -> not reproduced; every part measured and passing -> reproduced; else not measured.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, UserError
from ..records import UNDERSTANDING
from ..run.store import atomic_write_json, read_json
from .load import check_results, load_run
from .stats import Cell, one_sided_p, p_text, pct, pool, separated

REPRODUCED, NOT_REPRODUCED, NOT_MEASURED = "reproduced", "not reproduced", "not measured"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_MEASURED)
INPUT_KEYS = ("base", "stars", "stars_nofilter", "inject", "probes")

#: claim 1: U − G-normal at least this much (and the two 95 % intervals separate)
GAP_MIN = 0.20
#: claim 2: think recovers at least this fraction of the gap U − G-normal
CLOSE_FRACTION = 0.5
#: claim 3: STARS lifts G-normal by at least this much (and the intervals separate)
LIFT_MIN = 0.20
#: one-sided two-proportion z-test level for "above" (claims 2, 3b, 4)
ALPHA = 0.05
#: claim 5: "low" means accuracy at most this and the 95 % interval's top below INVERSE_TOP
INVERSE_MAX, INVERSE_TOP = 0.30, 0.50
#: claim 6: mean relevant-word probability at the queries at least this multiple of the baseline
PROBE_RATIO = 2.0
REASONING_FAMILIES = ("math", "mapping")

CLAIMS = {
    1: "Reasoning gap: generation without thinking falls well below understanding (G-normal ≪ U) "
       "on math and mapping",
    2: "Think mode closes much of the gap",
    3: "STARS internalises the reasoning without thinking, and filtering matters "
       "(filtered > unfiltered)",
    4: "Thinking helps forward knowledge transfer (after injection)",
    5: "Inverse search stays hard (after injection), with or without thinking",
    6: "Query tokens carry the answer (logit lens)",
}

TESTS = {
    1: f"In the base run, per family (math, mapping; tasks and levels pooled): U − G-normal ≥ "
       f"{GAP_MIN * 100:.0f} points AND the 95 % Wilson interval of G-normal lies entirely below "
       "U's. Both families must pass.",
    2: f"In the base run, per family (math, mapping): G-think − G-normal ≥ {CLOSE_FRACTION:.0%} of "
       f"(U − G-normal) AND one-sided two-proportion z-test G-think > G-normal with p < {ALPHA}. "
       "No gap (U ≤ G-normal) fails. Both families must pass.",
    3: f"(a) per family the STARS run measures (of math, mapping): G-normal after STARS − base "
       f"G-normal ≥ {LIFT_MIN * 100:.0f} points AND the 95 % intervals separate; (b) pooled over "
       f"those families: G-normal of the filtered STARS run > the --no-filter run, one-sided "
       f"z-test p < {ALPHA}.",
    4: f"In the injection run, knowledge-forward (pooled): G-think > G-normal, one-sided "
       f"two-proportion z-test p < {ALPHA}.",
    5: f"In the injection run, knowledge-inverse (pooled): in both modes accuracy ≤ "
       f"{INVERSE_MAX * 100:.0f} % AND the top of its 95 % interval < {INVERSE_TOP * 100:.0f} %. "
       "Measured only when the injection took: U on knowledge-forward (the injected facts) "
       "above chance, the bottom of its 95 % interval above the tasks' chance.",
    6: f"Over all probe items (paired): mean relevant-word probability at the queries ≥ "
       f"{PROBE_RATIO:g}× the baseline's (last text token) AND the 95 % interval (normal "
       "approximation) of the mean per-item difference query − baseline lies above 0; when the "
       "probe records a control (the other items' answers at the same place), the interval of "
       "query − control must lie above 0 too (the queries hold THIS item's answer, not just "
       "an answer).",
}


@dataclass
class Finding:
    number: int
    claim: str
    test: str
    measured: str
    verdict: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def combine(parts: Sequence[bool | None]) -> str:
    """The verdict of a claim from its parts (None = that part was not measured)."""
    if any(p is False for p in parts):
        return NOT_REPRODUCED
    if parts and all(p is True for p in parts):
        return REPRODUCED
    return NOT_MEASURED


# --- reading the inputs -----------------------------------------------------------------


def _as_results(value: Any, key: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        return load_run(Path(value)).results
    if hasattr(value, "results") and isinstance(value.results, dict):  # a RunData
        return value.results
    return check_results(value, f"<findings input {key!r}>")


def _task_levels(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """A task's pooled cells: ``all`` when present, else the only level."""
    levels = entry["levels"]
    if "all" in levels:
        return levels["all"]
    if len(levels) == 1:
        return next(iter(levels.values()))
    return {}


def family_cell(results: Mapping[str, Any] | None, family: str, mode: str,
                direction: str | None = None,
                only: Collection[str] | None = None) -> tuple[Cell | None, list[str]]:
    """One family's cell for a mode, pooled over its tasks; and the tasks pooled.

    ``direction`` picks knowledge tasks by name: "inverse" (name contains it) or "forward"
    (every other knowledge task); ``only`` keeps the named tasks (two runs compared on the
    tasks both measured).
    """
    if results is None:
        return None, []
    cells, names = [], []
    for task, entry in results["tasks"].items():
        if entry.get("family") != family or (only is not None and task not in only):
            continue
        if direction is not None and (("inverse" in task) != (direction == "inverse")):
            continue
        cell = Cell.from_json(_task_levels(entry).get(mode))
        if cell is not None and cell.n:
            cells.append(cell)
            names.append(task)
    return pool(cells), names


def family_facets(results: Mapping[str, Any] | None, family: str, mode: str,
                  only: Collection[str] | None = None) -> dict[str, float]:
    """A family's facet accuracies for a mode (the judge's per-part checks), pooled over tasks
    (``only``: the named ones)."""
    tally: dict[str, list[float]] = {}
    for task, entry in (results or {}).get("tasks", {}).items():
        if entry.get("family") != family or (only is not None and task not in only):
            continue
        for name, f in ((_task_levels(entry).get(mode) or {}).get("facets") or {}).items():
            t = tally.setdefault(name, [0.0, 0])
            t[0] += f["accuracy"] * f["n"]
            t[1] += f["n"]
    order = sorted(tally, key=lambda n: ({"object": 0, "count": 1}.get(n, 2), n))
    return {name: tally[name][0] / tally[name][1] for name in order if tally[name][1]}


def family_chance(results: Mapping[str, Any] | None, family: str,
                  only: Collection[str] | None = None) -> float | None:
    """The mean guessing baseline of a family's tasks (``only``: the named ones; the count's
    chance on math)."""
    chances = [e["chance"] for t, e in (results or {}).get("tasks", {}).items()
               if e.get("family") == family and (only is None or t in only)
               and isinstance(e.get("chance"), (int, float))]
    return sum(chances) / len(chances) if chances else None


def _c(cell: Cell | None) -> str:
    return cell.text() if cell else "not measured"


def _j(cell: Cell | None) -> dict[str, Any] | None:
    return cell.to_json() if cell else None


# --- the claims ---------------------------------------------------------------------------


def claim_gap(base: Mapping[str, Any] | None) -> Finding:
    parts, texts, numbers = [], [], {}
    for family in REASONING_FAMILIES:
        u, tasks = family_cell(base, family, UNDERSTANDING)
        g, _ = family_cell(base, family, "normal")
        if u is None or g is None:
            parts.append(None)
            texts.append(f"{family}: not measured")
            continue
        gap = u.accuracy - g.accuracy
        ok = gap >= GAP_MIN and bool(separated(g, u))
        parts.append(ok)
        texts.append(f"{family} ({', '.join(tasks)}): U {u.text()}, G-normal {g.text()}, "
                     f"gap {pct(gap, True)}, intervals {'separate' if separated(g, u) else 'overlap'}")
        numbers[family] = {"U": _j(u), "normal": _j(g), "gap": gap, "pass": ok}
    return Finding(1, CLAIMS[1], TESTS[1], "; ".join(texts), combine(parts), numbers)


def claim_think(base: Mapping[str, Any] | None) -> Finding:
    parts, texts, numbers = [], [], {}
    for family in REASONING_FAMILIES:
        u, tasks = family_cell(base, family, UNDERSTANDING)
        g, _ = family_cell(base, family, "normal")
        t, _ = family_cell(base, family, "think")
        if u is None or g is None or t is None:
            parts.append(None)
            texts.append(f"{family}: not measured")
            continue
        gap, gain = u.accuracy - g.accuracy, t.accuracy - g.accuracy
        p = one_sided_p(g, t)
        closed = gain / gap if gap > 0 else None
        ok = gap > 0 and gain >= CLOSE_FRACTION * gap and p is not None and p < ALPHA
        parts.append(ok)
        texts.append(f"{family} ({', '.join(tasks)}): U {u.text()}, G-normal {g.text()}, "
                     f"G-think {t.text()}; think "
                     f"gain {pct(gain, True)} = "
                     + (f"{closed:.0%} of the gap" if closed is not None else "no gap to close")
                     + f", p {p_text(p)}, left U − G-think {pct(u.accuracy - t.accuracy, True)}")
        numbers[family] = {"U": _j(u), "normal": _j(g), "think": _j(t), "gain": gain,
                           "closed_fraction": closed, "p_one_sided": p, "pass": ok}
    return Finding(2, CLAIMS[2], TESTS[2], "; ".join(texts), combine(parts), numbers)


def claim_stars(base: Mapping[str, Any] | None, stars: Mapping[str, Any] | None,
                nofilter: Mapping[str, Any] | None) -> Finding:
    parts: list[bool | None] = []
    texts, numbers = [], {}
    families = [f for f in REASONING_FAMILIES if family_cell(stars, f, "normal")[0] is not None]
    if not families:
        return Finding(3, CLAIMS[3], TESTS[3], "no STARS run with G-normal on math or mapping",
                       NOT_MEASURED, {})
    for family in families:
        after, tasks = family_cell(stars, family, "normal")
        before, base_tasks = family_cell(base, family, "normal", only=tasks)
        if before is None or base_tasks != tasks:
            # base and STARS are compared on the same tasks, or not at all
            parts.append(None)
            lacking = [t for t in tasks if t not in base_tasks]
            texts.append(f"(a) {family}: no base G-normal on {', '.join(lacking)}")
            continue
        lift = after.accuracy - before.accuracy
        ok = lift >= LIFT_MIN and bool(separated(before, after))
        parts.append(ok)
        texts.append(f"(a) {family} ({', '.join(tasks)}): G-normal base {before.text()} → STARS "
                     f"{after.text()}, lift {pct(lift, True)}, intervals "
                     f"{'separate' if separated(before, after) else 'overlap'}")
        numbers[family] = {"base": _j(before), "stars": _j(after), "lift": lift, "pass": ok}
        facets_before = family_facets(base, family, "normal", only=tasks)
        facets_after = family_facets(stars, family, "normal", only=tasks)
        shared = [n for n in facets_after if n in facets_before]
        if shared:  # what the lift is made of: the object, the count, ...
            chance = family_chance(stars, family)
            texts.append("right " + ", ".join(
                f"{n} {pct(facets_before[n])} → {pct(facets_after[n])}" for n in shared)
                + (f" (chance {pct(chance)})" if chance is not None else ""))
            numbers[family]["facets"] = {"base": facets_before, "stars": facets_after}
    # filtered vs no-filter on the tasks both runs measured
    common = {f: family_cell(nofilter, f, "normal", only=family_cell(stars, f, "normal")[1])[1]
              for f in families}
    filtered = pool(family_cell(stars, f, "normal", only=common[f])[0] for f in families)
    unfiltered = pool(family_cell(nofilter, f, "normal", only=common[f])[0] for f in families)
    if unfiltered is None:
        parts.append(None)
        texts.append("(b) no --no-filter run")
    else:
        p = one_sided_p(unfiltered, filtered)
        ok = p is not None and filtered.accuracy > unfiltered.accuracy and p < ALPHA
        parts.append(ok)
        texts.append(f"(b) G-normal filtered {filtered.text()} vs no-filter {unfiltered.text()}, "
                     f"p {p_text(p)}")
        numbers["filter"] = {"stars": _j(filtered), "nofilter": _j(unfiltered),
                             "p_one_sided": p, "pass": ok}
    return Finding(3, CLAIMS[3], TESTS[3], "; ".join(texts), combine(parts), numbers)


def claim_forward(inject: Mapping[str, Any] | None) -> Finding:
    g, tasks = family_cell(inject, "knowledge", "normal", "forward")
    t, _ = family_cell(inject, "knowledge", "think", "forward")
    u, _ = family_cell(inject, "knowledge", UNDERSTANDING, "forward")
    if g is None or t is None:
        return Finding(4, CLAIMS[4], TESTS[4], "no injection run with knowledge-forward in both "
                       "modes", NOT_MEASURED, {})
    p = one_sided_p(g, t)
    ok = t.accuracy > g.accuracy and p is not None and p < ALPHA
    text = (f"{', '.join(tasks)}: G-normal {g.text()}, G-think {t.text()}, difference "
            f"{pct(t.accuracy - g.accuracy, True)}, p {p_text(p)}; U {_c(u)}")
    return Finding(4, CLAIMS[4], TESTS[4], text, REPRODUCED if ok else NOT_REPRODUCED,
                   {"normal": _j(g), "think": _j(t), "U": _j(u), "p_one_sided": p, "pass": ok})


def injection_took(inject: Mapping[str, Any] | None) -> tuple[bool | None, str, dict[str, Any]]:
    """Did the injected model learn the facts? U on knowledge-forward (the name -> attribute
    facts the corpus teaches) above chance; None when not measured. U on the inverse direction
    is no test: a model that learned the facts may still fail it (the reversal curse)."""
    u, tasks = family_cell(inject, "knowledge", UNDERSTANDING, "forward")
    if u is None:
        return None, "no U on knowledge-forward to show that the injection took", {}
    chance = family_chance(inject, "knowledge", only=tasks) or 0.0
    took = u.lo > chance
    text = (f"injection took: U on {', '.join(tasks)} {u.text()} above chance {pct(chance)}"
            if took else f"injection did not take: U on {', '.join(tasks)} {u.text()}, chance "
            f"{pct(chance)} (the facts were not learned)")
    return took, text, {"U": u.to_json(), "chance": chance, "pass": took}


def claim_inverse(inject: Mapping[str, Any] | None) -> Finding:
    """Claim 5. Inverse search "stays hard" only says something about a model that knows the
    facts: low accuracy of one that never learned them is no evidence, so the claim is not
    measured until U on the injected facts is above chance."""
    parts, texts, numbers = [], [], {}
    tasks: list[str] = []
    for mode in ("normal", "think"):
        cell, names = family_cell(inject, "knowledge", mode, "inverse")
        tasks = tasks or names
        if cell is None:
            parts.append(None)
            texts.append(f"G-{mode} not measured")
            continue
        ok = cell.accuracy <= INVERSE_MAX and cell.hi < INVERSE_TOP
        parts.append(ok)
        texts.append(f"G-{mode} {cell.text()}")
        numbers[mode] = {**cell.to_json(), "pass": ok}
    u, _ = family_cell(inject, "knowledge", UNDERSTANDING, "inverse")
    numbers["U"] = _j(u)
    prefix = f"{', '.join(tasks)}: " if tasks else ""
    text = prefix + ", ".join(texts) + f"; U {_c(u)}"
    took, took_text, numbers["injection"] = injection_took(inject)
    if not took and any(p is not None for p in parts):
        return Finding(5, CLAIMS[5], TESTS[5], f"not measured, {took_text}; {text}",
                       NOT_MEASURED, numbers)
    return Finding(5, CLAIMS[5], TESTS[5], text + (f"; {took_text}" if took else ""),
                   combine(parts), numbers)


def probe_rows(probes: Any) -> list[dict[str, Any]] | None:
    """The per-item rows of a probe summary (see docs/report.md); None when there are none.

    Accepts the rows themselves, a dict holding them under ``rows`` or ``summary``, or a probe
    folder whose ``probe.json`` does.
    """
    if probes is None:
        return None
    where: Any = "<findings input 'probes'>"
    if isinstance(probes, (str, Path)):
        where = Path(probes) / "probe.json" if Path(probes).is_dir() else Path(probes)
        if not where.is_file():
            raise UserError(f"{where}: no such probe file")
        probes = read_json(where)
    if isinstance(probes, dict):
        if "rows" not in probes and "summary" not in probes:
            # a results.json, a probe-transfer folder: not a lens probe's rows
            raise DataError(where, None, "rows", "missing: not a probe's per-item rows (give the "
                            "folder of a probe-lens run, or its probe.json)")
        probes = probes.get("rows", probes.get("summary"))
    if probes is None:
        return None
    if not isinstance(probes, list):
        raise DataError(where, None, "rows", "expected a list of {task, mode, query, baseline}")
    for i, row in enumerate(probes):
        for key in ("query", "baseline", "control"):
            values = row.get(key) if isinstance(row, dict) else None
            if key == "control" and values is None:
                continue  # optional: a task whose items have no other answers
            if not isinstance(values, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                    for v in values):
                raise DataError(where, None, f"rows[{i}].{key}",
                                "expected a list of per-item probabilities in [0, 1]")
        if len(row["query"]) != len(row["baseline"]):
            raise DataError(where, None, f"rows[{i}]", "query and baseline differ in length "
                            "(they are paired per item)")
    return probes


def _probe_items(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per item: an item probed in several modes (rows naming the same task and
    ``ids``) is one observation, its values averaged over the modes, or the interval would
    count it twice; rows without ids count each value as its own item."""
    entries: dict[Any, list[tuple[float, float, float | None]]] = {}
    for i, row in enumerate(rows):
        ids, control = row.get("ids"), row.get("control")
        ids = ids if isinstance(ids, list) and len(ids) == len(row["query"]) else None
        control = control if isinstance(control, list) and len(control) == len(row["query"]) else None
        for j, (q, b) in enumerate(zip(row["query"], row["baseline"], strict=True)):
            key = (row.get("task"), str(ids[j])) if ids else (i, j)
            entries.setdefault(key, []).append(
                (float(q), float(b), None if control is None else float(control[j])))
    items = []
    for values in entries.values():
        with_control = [(q, c) for q, _, c in values if c is not None]
        items.append({"query": sum(q for q, _, _ in values) / len(values),
                      "baseline": sum(b for _, b, _ in values) / len(values),
                      "control_pair": (sum(q for q, _ in with_control) / len(with_control),
                                       sum(c for _, c in with_control) / len(with_control))
                      if with_control else None})
    return items


def _mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its normal 95 % interval."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1)) if n > 1 else math.inf
    return mean, 1.959963984540054 * sd / math.sqrt(n)


def claim_probes(probes: Any) -> Finding:
    rows = probe_rows(probes)
    items = _probe_items(rows) if rows else []
    if len(items) < 2:
        return Finding(6, CLAIMS[6], TESTS[6], "no probe rows with per-item values",
                       NOT_MEASURED, {})
    n = len(items)
    mean_q = sum(i["query"] for i in items) / n
    mean_b = sum(i["baseline"] for i in items) / n
    mean_d, half = _mean_ci([i["query"] - i["baseline"] for i in items])
    ratio = mean_q / mean_b if mean_b > 0 else math.inf
    ok = ratio >= PROBE_RATIO and mean_d - half > 0
    control = None
    paired = [i["control_pair"] for i in items if i["control_pair"] is not None]
    if len(paired) >= 2:  # tested on the items that carry a control (a math-only task has none)
        mean_dc, half_c = _mean_ci([q - c for q, c in paired])
        control = {"control_n": len(paired), "control_mean": sum(c for _, c in paired) / len(paired),
                   "diff_control_mean": mean_dc,
                   "diff_control_ci95": [mean_dc - half_c, mean_dc + half_c]}
        ok = ok and mean_dc - half_c > 0
    per_row = "; ".join(
        f"{r.get('task', '?')} {r.get('mode', '')}".strip()
        + f": {sum(r['query']) / len(r['query']):.3g} vs {sum(r['baseline']) / len(r['baseline']):.3g}"
        for r in rows or [] if r["query"])
    text = (f"n={n} items: query {mean_q:.3g} vs baseline {mean_b:.3g} (×{ratio:.3g}), "
            f"difference {mean_d:.3g} [{mean_d - half:.3g}, {mean_d + half:.3g}]")
    if control:
        lo, hi = control["diff_control_ci95"]
        on = "" if control["control_n"] == n else f" (on the {control['control_n']} items that have one)"
        text += (f"; vs control {control['control_mean']:.3g}{on}: difference "
                 f"{control['diff_control_mean']:.3g} [{lo:.3g}, {hi:.3g}]")
    text += f" ({per_row})"
    return Finding(6, CLAIMS[6], TESTS[6], text, REPRODUCED if ok else NOT_REPRODUCED,
                   {"n": n, "query_mean": mean_q, "baseline_mean": mean_b, "ratio": ratio,
                    "diff_mean": mean_d, "diff_ci95": [mean_d - half, mean_d + half],
                    **(control or {}), "pass": ok})


def evaluate_findings(inputs: Mapping[str, Any]) -> list[Finding]:
    """All six claims from whatever was measured (see the module docstring for the keys)."""
    unknown = sorted(set(inputs) - set(INPUT_KEYS))
    if unknown:
        raise UserError(f"unknown findings input {', '.join(map(repr, unknown))}; "
                        f"expected some of {', '.join(INPUT_KEYS)}")
    runs = {k: _as_results(inputs.get(k), k) for k in INPUT_KEYS if k != "probes"}
    return [
        claim_gap(runs["base"]),
        claim_think(runs["base"]),
        claim_stars(runs["base"], runs["stars"], runs["stars_nofilter"]),
        claim_forward(runs["inject"]),
        claim_inverse(runs["inject"]),
        claim_probes(inputs.get("probes")),
    ]


# --- writing and reading findings.json, the terminal table --------------------------------


def findings_json(findings: Sequence[Finding], warnings: Sequence[str] = ()) -> dict[str, Any]:
    """findings.json's content, also what ``unisandbox findings --json`` prints; ``warnings``:
    what a reader must know (a run not finished)."""
    return {"findings": [f.to_json() for f in findings], "warnings": list(warnings), "version": 1}


def save_findings(path: Path, findings: Sequence[Finding], warnings: Sequence[str] = ()) -> None:
    """Write findings.json; an existing file is replaced only when it is a findings file (a
    run's results.json or a probe.json given as --out by mistake is left alone)."""
    path = Path(path)
    if path.exists():
        try:
            load_findings(path)
        except UserError:
            raise UserError(f"{path} exists and is not a findings file; write findings to a "
                            "new file (--out), so that it is not overwritten") from None
    atomic_write_json(path, findings_json(findings, warnings))


def load_findings(path: Path) -> list[Finding]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such findings file")
    data = read_json(path)
    items = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise DataError(path, None, "findings", "expected a list (write it with "
                        "`unisandbox findings --out` or report.findings.save_findings)")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataError(path, None, f"findings[{i}]", "expected an object")
        for key, kind in (("number", int), ("claim", str), ("test", str), ("measured", str),
                          ("verdict", str)):
            if not isinstance(item.get(key), kind):
                raise DataError(path, None, f"findings[{i}].{key}", f"missing or not {kind.__name__}")
        if item["verdict"] not in VERDICTS:
            raise DataError(path, None, f"findings[{i}].verdict",
                            f"{item['verdict']!r} is not one of {', '.join(VERDICTS)}")
        out.append(Finding(item["number"], item["claim"], item["test"], item["measured"],
                           item["verdict"], dict(item.get("numbers") or {})))
    return out


def findings_warnings(path: Path) -> list[str]:
    """The ``warnings`` a findings file was written with (a run not finished): a report that
    shows its verdicts shows them too."""
    data = read_json(Path(path))
    warnings = data.get("warnings", []) if isinstance(data, dict) else []
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise DataError(Path(path), None, "warnings", "expected a list of strings")
    return warnings


def findings_table(findings: Sequence[Finding], width: int = 150) -> str:
    """A plain text table with wrapped cells, for the terminal."""
    widths = [2, 30, 15, 0, 0]
    rest = max(40, width - sum(widths) - 8)
    widths[3], widths[4] = rest // 2, rest - rest // 2
    headers = ["#", "claim", "verdict", "measured", "test"]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for f in findings:
        cols = [[str(f.number)], textwrap.wrap(f.claim, widths[1]), [f.verdict.upper()],
                textwrap.wrap(f.measured, widths[3]), textwrap.wrap(f.test, widths[4])]
        for i in range(max(len(c) for c in cols)):
            lines.append("  ".join((c[i] if i < len(c) else "").ljust(w)
                                   for c, w in zip(cols, widths, strict=True)).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip()
