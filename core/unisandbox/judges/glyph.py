"""The ``glyph`` judge: an exact, deterministic judge for the glyph (sandbox) world.

It reads each image back with :func:`unisandbox.world.glyph_draw.parse` and compares the
reading with the sample's structured ``target``. Verdicts follow the original two-stage
protocol: the reading is the stage-1 description; an image that shows something else, or no
clean answer at all (mixed kinds, an unreadable cell, a blank image, a visible symbol), is a
``no`` whose description starts with ``Error:``. ``error`` is kept for items the judge cannot
decide: a missing or corrupt file, an image size it cannot bring to 32 px, a sample without
a glyph-world target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..protocols.judge import Judge
from ..records import JudgeItem, Verdict
from ..world import glyph_draw


class GlyphJudge(Judge):
    """Parse the image, match it against ``sample.target``; no model, no network."""

    def identity(self) -> dict[str, Any]:
        return {"kind": "glyph", "parser": glyph_draw.PARSER_VERSION,
                "templates": glyph_draw.templates_digest()}

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        return [self.judge_one(item) for item in items]

    def judge_one(self, item: JudgeItem) -> Verdict:
        target = item.sample.target
        if not target:
            return Verdict("error", raw=f"sample {item.sample.id!r} has no structured target; the "
                           "glyph judge needs glyph-world tasks (--task-arg world=glyph)")
        try:
            glyph_draw.check_target(target)
            if "symbol" in target:
                raise ValueError("a symbol is never an answer")
        except ValueError as exc:
            return Verdict("error", raw=f"target {dict(target)} cannot be judged in the glyph "
                           f"world: {exc}")
        try:
            with Image.open(item.image_path) as image:
                image.load()
                pixels = glyph_draw.as_array(image)
        except FileNotFoundError:
            return Verdict("error", raw=f"missing image {item.image_path}")
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
            return Verdict("error", raw=f"cannot read image {item.image_path}: {exc}")
        except ValueError as exc:
            return Verdict("error", raw=f"{item.image_path.name}: {exc}")
        reading = glyph_draw.parse(pixels)
        verdict = "yes" if glyph_draw.matches(reading, target) else "no"
        return Verdict(verdict, raw=reading.report(), description=reading.text,
                       facets=glyph_draw.facets(reading, target))


def glyph_judge(tasks: Sequence[Any] = ()) -> GlyphJudge:
    """Factory registered as ``glyph`` (no user arguments). The engine hands it the run's
    ``tasks``: a task with an item that has no glyph-world answer (an everyday-world task, most
    often: ``--task-arg world=glyph`` forgotten) is refused before anything is drawn."""
    for task in tasks:
        problem = _first_problem(task)
        if problem is None:
            continue
        sample_id, why = problem
        if getattr(getattr(task, "world", None), "name", None) == "glyph":
            raise ValueError(f"task {task.name!r}: item {sample_id} has no glyph-world answer ({why})")
        raise ValueError(f"task {task.name!r} is not in the glyph world ({why}); the glyph judge "
                         "reads glyph-world images: add --task-arg world=glyph")
    return GlyphJudge()


def _first_problem(task: Any) -> tuple[str, str] | None:
    """(id, why) of the task's first item without a glyph-world answer; every item is checked
    (a knowledge task's first may be a portrait, drawable in both worlds)."""
    for sample in task.samples():
        try:
            glyph_draw.check_target(sample.target or {})
        except ValueError as exc:
            return sample.id, str(exc)
    return None
