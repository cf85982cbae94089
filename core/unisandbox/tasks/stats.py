"""``unisandbox data stats``: what a file holds, at a glance."""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import arith
from .expr import operators
from .mapping import parse_rules, resolve
from .published import LoadedFile, parse_count_label


def _top(counter: Counter[Any], k: int = 12) -> dict[str, int]:
    return {str(key): n for key, n in counter.most_common(k)}


def file_stats(loaded: LoadedFile) -> dict[str, Any]:
    samples = loaded.samples
    out: dict[str, Any] = {
        "path": str(loaded.path), "family": loaded.family, "samples": len(samples),
        "units": len({s.group or s.id for s in samples}) if loaded.family == "mapping" else len(samples),
        "levels": _top(Counter(s.level for s in samples)),
        "with_understanding_question": sum(1 for s in samples if s.question_answer),
        "splits": _top(Counter(s.meta.get("split", "-") for s in samples)),
        "worlds": _top(Counter(s.meta.get("world", "-") for s in samples)),
        "warnings": list(loaded.warnings),
    }
    if loaded.family == "math":
        labels = [parse_count_label(s.answer) for s in samples]
        out["label_counts"] = _top(Counter(lab[0] if lab else "?" for lab in labels), 20)
        out["objects"] = _top(Counter(lab[1] if lab else "?" for lab in labels))
        ops: Counter[str] = Counter()
        n_ops: Counter[int] = Counter()
        unreadable = 0
        for s in samples:
            read = arith.read_math_prompt(s.prompt)
            if read.node is None:
                unreadable += 1
                continue
            found = list(operators(read.node))
            ops.update(found)
            n_ops[len(found)] += 1
        out.update(operators=_top(ops), operations_per_item=_top(n_ops), unreadable_prompts=unreadable,
                   rounded_down=sum(1 for s in samples if "rounded down" in s.prompt))
    elif loaded.family == "mapping":
        rules: Counter[int] = Counter()
        hops: Counter[Any] = Counter()
        for s in samples:
            parsed = parse_rules(s.prompt)
            rules[len(parsed.rules)] += 1
            chain = resolve(parsed.rules, parsed.query) if parsed.query else None
            hops[len(chain.chain) if chain and chain.object else "broken"] += 1
        out.update(rules_per_prompt=_top(rules), hops=_top(hops),
                   answers=_top(Counter(s.answer.lower() for s in samples)))
    else:
        out["kinds"] = _top(Counter(s.meta.get("kind", "?") for s in samples))
        out["characters"] = len({n for s in samples for n in s.meta.get("characters", ())})
        for attribute in ("ethnicity", "hair", "age", "gender"):
            out[attribute] = _top(Counter(s.target["portrait"].get(attribute, "?") for s in samples
                                          if "portrait" in s.target))
        out["answers"] = _top(Counter(s.answer for s in samples if "portrait" not in s.target))
    return out
