"""From per-sample verdicts to accuracies with 95 % intervals, U and the gap U − G.

Default scoring leaves judge errors out of the denominator and reports how many there were;
reference scoring counts them as wrong, exactly like the original scorer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..records import UNDERSTANDING, Sample

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval; well-behaved at 0 and n (unlike the normal approximation)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def unit_verdicts(
    samples: Sequence[Sample], verdicts: Mapping[str, str], unit: str
) -> list[tuple[Sample, str]]:
    """One verdict per scoring unit: a sample, or a pair (all members right -> yes).

    A pair with any ``no`` is ``no``; otherwise any ``error`` makes it ``error``; a missing
    verdict (sample not yet run) leaves the unit out.
    """
    if unit != "pair":
        return [(s, verdicts[s.id]) for s in samples if s.id in verdicts]
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.group or s.id].append(s)
    out: list[tuple[Sample, str]] = []
    for members in groups.values():
        got = [verdicts.get(m.id) for m in members]
        if any(g is None for g in got):
            continue
        out.append((members[0], unit_label(got)))
    return out


def unit_label(verdicts: Iterable[str | None]) -> str:
    """A pair's verdict from its members': any ``no`` is ``no``, else any ``error`` is
    ``error``, else ``yes`` (the compare command pairs runs' units by the same rule)."""
    got = list(verdicts)
    return "no" if "no" in got else "error" if "error" in got else "yes"


def summarise(labels: Iterable[str], reference_scoring: bool) -> dict[str, Any]:
    labels = list(labels)
    yes, no, err = labels.count("yes"), labels.count("no"), labels.count("error")
    n = yes + no + (err if reference_scoring else 0)
    lo, hi = wilson_interval(yes, n)
    return {"accuracy": yes / n if n else None, "n": n, "n_yes": yes, "n_error": err,
            "ci95": [lo, hi]}


def facet_summary(samples: Iterable[Sample], records: Mapping[tuple[str, str], dict[str, Any]],
                  mode: str) -> dict[str, Any]:
    """Per facet the judge reported (glyph: ``object``, ``count``), its accuracy over samples.

    Samples, not pairs: a facet says what each picture got right, which is what a reader
    wants when a generator is wrong (the right object at the wrong count, or the reverse).
    """
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in samples:
        for name, ok in (records.get((mode, s.id)) or {}).get("facets", {}).items():
            tally[name][0] += 1
            tally[name][1] += bool(ok)
    return {name: {"accuracy": yes / n, "n": n} for name, (n, yes) in tally.items()}


def aggregate_task(
    samples: Sequence[Sample],
    records: Mapping[tuple[str, str], dict[str, Any]],
    *,
    unit: str,
    modes: Sequence[str],
    reference_scoring: bool = False,
) -> dict[str, Any]:
    """Results of one task: per level (and ``all``), per mode, with U and the gap.

    ``records`` maps (mode, sample id) -> the sample's log record.
    """
    levels = sorted({s.level for s in samples if s.level is not None})
    slices: dict[str, list[Sample]] = {str(lv): [s for s in samples if s.level == lv] for lv in levels}
    slices["all"] = list(samples)
    out: dict[str, Any] = {}
    for key, subset in slices.items():
        entry: dict[str, Any] = {}
        for mode in [*modes, UNDERSTANDING]:
            verdicts = {sid: r["verdict"] for (m, sid), r in records.items() if m == mode}
            if not verdicts:
                continue
            units = unit_verdicts(subset, verdicts, unit)
            entry[mode] = summarise((label for _, label in units), reference_scoring)
            facets = facet_summary(subset, records, mode)
            if facets:
                entry[mode]["facets"] = facets
        u = entry.get(UNDERSTANDING, {}).get("accuracy")
        entry["gap"] = {m: u - entry[m]["accuracy"] for m in modes
                        if u is not None and entry.get(m, {}).get("accuracy") is not None}
        out[key] = entry
    return out
