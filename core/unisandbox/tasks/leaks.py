"""The leak checker: proves that sets of different splits share no item identity or prompt.

Each sample's identities are what a model could memorise: the canonical expression (math),
the rule set (mapping), each character named (knowledge). They come from the sample's
``meta["identity"]`` when a generator wrote it, and are re-derived from the prompt otherwise,
so published or hand-made files can be checked too. Two checks:

* overlap: an identity or a prompt text appears in more than one group (split or file);
* assignment: a generated sample declares a split (``meta["split"]``) that its identity does
  not hash to (``splits.split_of``), i.e. the set was not made by the leak-free rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..records import Sample
from . import arith
from .mapping import parse_rules, rule_set_identity
from .splits import split_of

_NAMES = re.compile(r"\bcharacters? (\S+?)(?: and (\S+?))? from\b")


def identities(sample: Sample, family: str) -> tuple[str, ...]:
    """The identities of one sample (see the module docstring)."""
    declared = sample.meta.get("identity")
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, (list, tuple)) and declared:
        return tuple(str(d) for d in declared)
    if family == "math":
        read = arith.read_math_prompt(sample.prompt)
        if read.node is not None:
            rounded = read.value is not None and read.value.denominator != 1
            return (arith.identity(read.node, rounded),)
    elif family == "mapping":
        parsed = parse_rules(sample.prompt)
        if parsed.rules:
            return (rule_set_identity(parsed.rules),)
    elif family == "knowledge":
        match = _NAMES.search(sample.prompt)
        if match:
            return tuple(f"character:{n}" for n in match.groups() if n)
    return ("prompt:" + sample.prompt,)


@attrs.frozen
class LeakReport:
    groups: tuple[str, ...]
    n_samples: Mapping[str, int]
    shared_identities: Mapping[str, tuple[str, ...]]  # identity -> groups holding it
    shared_prompts: Mapping[str, tuple[str, ...]]  # prompt -> groups holding it
    misassigned: tuple[tuple[str, str, str, str], ...]  # (group, sample id, declared, actual)

    @property
    def ok(self) -> bool:
        return not (self.shared_identities or self.shared_prompts or self.misassigned)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "groups": list(self.groups), "n_samples": dict(self.n_samples),
                "shared_identities": {k: list(v) for k, v in self.shared_identities.items()},
                "shared_prompts": {k: list(v) for k, v in self.shared_prompts.items()},
                "misassigned": [list(m) for m in self.misassigned]}


def check_leaks(groups: Mapping[str, Sequence[Sample]], family: str) -> LeakReport:
    """Compare every group (a split, or a file) with every other."""
    owners: dict[str, set[str]] = {}
    prompts: dict[str, set[str]] = {}
    misassigned: list[tuple[str, str, str, str]] = []
    for group, samples in groups.items():
        for s in samples:
            ids = identities(s, family)
            for ident in ids:
                owners.setdefault(ident, set()).add(group)
            prompts.setdefault(s.prompt, set()).add(group)
            declared = s.meta.get("split")
            if declared is not None:
                actual = {split_of(i) for i in ids if not i.startswith("prompt:")}
                if actual and actual != {declared}:
                    misassigned.append((group, s.id, str(declared), ",".join(sorted(actual))))
    return LeakReport(
        groups=tuple(groups),
        n_samples={g: len(s) for g, s in groups.items()},
        shared_identities={i: tuple(sorted(g)) for i, g in owners.items() if len(g) > 1},
        shared_prompts={p: tuple(sorted(g)) for p, g in prompts.items() if len(g) > 1},
        misassigned=tuple(misassigned),
    )


__all__ = ["LeakReport", "check_leaks", "identities"]
