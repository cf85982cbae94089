"""Argument checks and small text helpers every task generator shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from functools import cached_property
from typing import Any

from ..answers import contains_phrase, words
from ..errors import UserError
from ..protocols import Task
from ..records import Sample
from ..world import Thing, World, get_world
from ..world.base import MAX_COUNT
from .splits import check_split

MAX_N = 1_000_000


def parse_counts(value: Any, world: World | None = None) -> tuple[int, ...]:
    """``"1-5"`` / ``"3"`` / ``"1,2,4"`` / ``3`` / ``[1, 2]`` -> sorted distinct counts, each
    one a picture of ``world`` can show (any world's ``MAX_COUNT`` without one)."""
    text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    counts: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise UserError(f"counts must look like 1-5, 3 or 1,2,4; got {value!r}")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) else lo
        if not 1 <= lo <= hi <= MAX_COUNT:
            raise UserError(f"counts must lie within 1-{MAX_COUNT} with low <= high; got {value!r}")
        if world is not None and hi > world.max_count:
            raise UserError(f"counts={value}: a picture of the {world.name} world shows 1 to "
                            f"{world.max_count} objects")
        counts.update(range(lo, hi + 1))
    return tuple(sorted(counts))


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise UserError(f"{name} must be an integer, got {value!r}") from None
    if not lo <= value <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def check_common(n: Any, seed: Any, split: Any, world: Any) -> tuple[int, int, str, World]:
    """Validate the arguments every generator takes; errors name the argument."""
    return (check_int("n", n, 1, MAX_N), check_int("seed", seed, 0, 2**63 - 1),
            check_split(str(split)), get_world(world))


def article(phrase: str) -> str:
    """'a red star' / 'an umbrella' (vowel-letter rule, enough for the worlds' nouns)."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def fmt(value: Fraction | int) -> str:
    """An exact value as text: '3', '-2', '7/3'."""
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


_LINE = re.compile(r"\n+")
_SENTENCE = re.compile(r"(?<=\.)\s+")


def final_sentence(reply: str) -> str:
    """The last sentence of a reply: a reply may show its working before it answers.

    Lines split first, then sentences at ". " (a mapping symbol such as '!' or '?' must not
    split a sentence, so only full stops followed by a space count).
    """
    lines = [ln for ln in _LINE.split(reply.strip()) if ln.strip()]
    if not lines:
        return ""
    parts = [p for p in _SENTENCE.split(lines[-1].strip()) if p.strip(" .")]
    return parts[-1] if parts else lines[-1]


class GeneratedTask(Task):
    """A procedural task: samples are built once, on first use, and kept."""

    #: mean per-unit probability of a right answer by uniform guessing among the answers the
    #: prompt leaves open (filled by subclasses from each sample's ``meta["chance"]``).
    @cached_property
    def _samples(self) -> tuple[Sample, ...]:
        return tuple(self.build())

    def build(self) -> Sequence[Sample]:
        raise NotImplementedError

    def samples(self) -> Sequence[Sample]:
        return self._samples

    @property
    def chance(self) -> float | None:
        units: dict[str, float] = {}
        for s in self.samples():
            key = (s.group or s.id) if self.unit == "pair" else s.id
            units[key] = units.get(key, 1.0) * float(s.meta.get("chance", 0.0))
        return sum(units.values()) / len(units) if units else None


def named_one(text: str, candidates: Sequence[str]) -> str | None:
    """The one candidate phrase ``text`` names (plurals fold, numbers as digits); None when it
    names none or several (a hedge)."""
    got = words(text)
    named = {c for c in candidates if contains_phrase(got, words(c))}
    # a phrase inside a longer named one ("roses" in "red roses") is not named on its own
    named = {c for c in named if not any(c != o and contains_phrase(words(o), words(c)) for o in named)}
    return named.pop() if len(named) == 1 else None


def count_in(text: str, thing: Thing) -> int | None:
    """How many of ``thing`` a description says it shows: "3 red stars" -> 3, "a red star" ->
    1; None when it names the thing not exactly once or without a number."""
    got, noun = words(text), words(thing.name(1))
    at = [i for i in range(len(got) - len(noun) + 1) if got[i : i + len(noun)] == noun]
    if len(at) != 1 or at[0] == 0:
        return None
    before = got[at[0] - 1]
    return 1 if before in ("a", "an") else int(before) if before.isdigit() else None

