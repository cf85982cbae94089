"""Direct-prompt, image-description and self-filter accuracy of a sandbox model (what the
bench reports).

The reasoning tasks (U, G-normal, G-think) go through the engine's runner like any model's;
these measure what the runner does not: can the generator draw what it is told directly, can
the understanding side describe a picture, and can it tell a right picture from a near miss
(the ``self`` judge STARS filters with, on exact renders).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unisandbox.answers import words
from unisandbox.judges.selfjudge import SelfJudge
from unisandbox.protocols.model import Model
from unisandbox.protocols.task import Task
from unisandbox.records import GenerationRequest, JudgeItem
from unisandbox.world.glyph_draw import matches, parse, render

from ..model import QueryModel
from .corpus import DESCRIBE_QUESTIONS, HELD_OUT_TEMPLATE, describe_answer, near_miss, phrase


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
                    template: str = HELD_OUT_TEMPLATE, seed: int = 0, draws: int = 1) -> dict[str, Any]:
    """Exact (kind, colour, count / portrait) accuracy on direct prompts, by the glyph parser.

    Each target is drawn ``draws`` times, draw ``d`` with the seeds of ``seed + d``: the
    held-out targets are few (46), so with one draw each a single picture moves the figure by
    two points; ``n`` counts pictures, ``per_draw`` is each draw's accuracy.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    requests = [GenerationRequest(template.format(p=phrase(t)), "normal", (seed + d) * 100_003 + i)
                for d in range(draws) for i, t in enumerate(targets)]
    images = [g.image for g in model.generate(requests)]
    hits = [(_category(t), matches(parse(im), t)) for t, im in zip(list(targets) * draws, images, strict=True)]
    per = len(targets)
    return {**_summary(hits), "per_draw": [sum(ok for _, ok in hits[d * per:(d + 1) * per]) / max(1, per)
                                           for d in range(draws)]}


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


def self_filter_accuracy(model: Model, tasks: Sequence[Task], folder: Path, seed: int = 0,
                         mode: str = "verdict") -> dict[str, Any]:
    """The ``self`` judge (in ``mode``) on exact renders, per task: each sample's right picture
    and a near miss (one attribute off, what a generator gets wrong). A filter is only worth
    its compute when it says YES to right pictures more often than to near misses;
    ``separation`` is the difference (0: it cannot tell them apart). Any model with
    ``understand`` (and ``chat`` for ``mode=consistency``) works: the verdicts come from the
    real ``self`` judge.
    """
    rng = random.Random(f"self-filter-eval:{seed}")
    judge = SelfJudge(lambda: model, batch_size=64, mode=mode, tasks=tasks)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for task in tasks:
        name, samples = task.name, task.samples()
        items = []
        for i, sample in enumerate(samples):
            for is_right in (True, False):
                target = dict(sample.target) if is_right else near_miss(sample.target, rng)
                path = folder / f"{name}-{i}-{'right' if is_right else 'miss'}.png"
                render(target).save(path)
                items.append(JudgeItem(name, task.family, sample, path))
        verdicts = [v.verdict for v in judge.judge(items)]
        yes_right = verdicts[0::2].count("yes") / len(samples)  # items alternate: right, near miss
        yes_miss = verdicts[1::2].count("yes") / len(samples)
        out[name] = {"yes_right": yes_right, "yes_near_miss": yes_miss, "separation": yes_right - yes_miss,
                     "errors": verdicts.count("error"), "n": len(samples)}
    return out
