"""Matching a model's text reply against an expected answer (the U measurement)."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: number words a reply or a label may use for a count (the published answers stay within 20)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                "seventeen", "eighteen", "nineteen", "twenty")
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case word tokens, with number words mapped to digits and simple plurals folded."""
    out: list[str] = []
    for w in _WORD.findall(text.lower()):
        if w in NUMBER_WORDS:
            w = str(NUMBER_WORDS.index(w))
        out.append(singular(w))
    return out


def singular(word: str) -> str:
    """A crude, deterministic singular form good enough for object names in the tasks."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses", "oes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def contains_phrase(haystack: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))


def reply_matches(reply: str, expected: str, distractors: Iterable[str] = ()) -> bool:
    """True when ``reply`` names ``expected`` and none of ``distractors``.

    Numbers match as digits or words; plurals fold. Naming a distractor too (a hedge such as
    "Aurelius or Nyxella") is wrong.
    """
    got = words(reply)
    if not contains_phrase(got, words(expected)):
        return False
    return not any(contains_phrase(got, words(d)) for d in distractors if d != expected)
