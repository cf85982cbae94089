"""Direct-prompt and image-description accuracy of a sandbox model (what the bench reports).

The reasoning tasks (U, G-normal, G-think) go through the engine's runner like any model's;
these two measure what the runner does not: can the generator draw what it is told directly,
and can the understanding side describe a picture.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from unisandbox.answers import words
from unisandbox.records import GenerationRequest
from unisandbox.world.glyph_draw import matches, parse, render

from ..model import QueryModel
from .corpus import DESCRIBE_QUESTIONS, HELD_OUT_TEMPLATE, describe_answer, phrase


def _category(target: Mapping[str, Any]) -> str:
    if "portrait" in target:
        return "portrait"
    return "shape" if "colour" in target else "fruit/flower"


def _summary(hits: Sequence[tuple[str, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {"accuracy": sum(ok for _, ok in hits) / max(1, len(hits)), "n": len(hits)}
    for cat in sorted({c for c, _ in hits}):
        mine = [ok for c, ok in hits if c == cat]
        out[cat] = {"accuracy": sum(mine) / len(mine), "n": len(mine)}
    return out


def direct_accuracy(model: QueryModel, targets: Sequence[Mapping[str, Any]],
                    template: str = HELD_OUT_TEMPLATE, seed: int = 0) -> dict[str, Any]:
    """Exact (kind, colour, count / portrait) accuracy on direct prompts, by the glyph parser."""
    requests = [GenerationRequest(template.format(p=phrase(t)), "normal", seed * 100_003 + i)
                for i, t in enumerate(targets)]
    images = [g.image for g in model.generate(requests)]
    return _summary([(_category(t), matches(parse(im), t)) for t, im in zip(targets, images, strict=True)])


def describe_accuracy(model: QueryModel, targets: Sequence[Mapping[str, Any]],
                      seed: int = 0) -> dict[str, Any]:
    """Does the understanding side describe exact renders right (random layouts for objects)?"""
    rng = random.Random(f"describe-eval:{seed}")
    images, questions, expected = [], [], []
    for t in targets:
        layout = "random" if "kind" in t and rng.random() < 0.5 else "canonical"
        images.append(render(t, layout=layout, seed=rng.randrange(1 << 30)))
        questions.append(rng.choice(DESCRIBE_QUESTIONS))
        expected.append(words(describe_answer(t)))
    replies = model.understand(images, questions)
    return _summary([(_category(t), words(r) == e)
                     for t, r, e in zip(targets, replies, expected, strict=True)])
