"""Typed, immutable records that flow between tasks, models, judges and the run store.

Every record is a frozen attrs class so it can be hashed, logged and compared; nothing here
imports torch, so the CLI stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from PIL.Image import Image

#: Generation modes every ``generate`` model understands.
MODES: tuple[str, ...] = ("normal", "think")
#: The pseudo-mode under which the understanding side (U) is measured and logged.
UNDERSTANDING = "understanding"

VerdictLabel = Literal["yes", "no", "error"]
VERDICTS: tuple[str, ...] = ("yes", "no", "error")


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.frozen
class Sample:
    """One task item.

    ``prompt`` is what the generator sees; ``answer`` is the expected answer in words (what a
    VLM judge compares against); ``question``/``question_answer`` measure the understanding
    side on exactly this item; ``target`` is the structured answer a deterministic judge
    checks (world-specific, e.g. ``{"kind": "star", "colour": "red", "count": 3}``).
    ``group`` ties A/B members of a pair: a pair scores only when all members are right.
    """

    id: str
    prompt: str
    answer: str
    question: str = ""
    question_answer: str = ""
    level: int | None = None
    group: str | None = None
    target: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    meta: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        return cls(**data)


def _temperature(_instance: Any, _attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {value!r}")


@attrs.frozen
class GenerationRequest:
    """Ask a model for one image. ``seed`` comes from the engine (see ``run.seeds``).

    ``temperature`` samples a think-mode reasoning instead of writing the greedy one (0, the
    default, and what evaluation uses); the reasoning is drawn with ``seed``, so one seed gives
    one reasoning. Only models with the ``think_sampling`` capability take it above 0 (STARS's
    stage I: several candidates per prompt then reason differently, and the filter chooses).
    """

    prompt: str
    mode: str = "normal"
    seed: int = 0
    temperature: float = attrs.field(default=0.0, validator=_temperature)


@attrs.frozen
class Generation:
    """A generated image; ``think`` holds the reasoning text in think mode."""

    image: Image
    think: str | None = None


@attrs.frozen
class JudgeItem:
    """One image to judge against one sample of one task."""

    task: str
    family: str
    sample: Sample
    image_path: Path


@attrs.frozen
class Verdict:
    """A judge's decision. ``error`` means the judge could not decide (never silently "no").

    ``raw`` keeps the judge's own text (VLM replies, parser report); ``description`` is the
    stage-1 description when the judge has one. ``facets`` are the separate checks a judge
    could make (the glyph judge: ``object``, ``count``; a portrait's attributes), so a report
    can say what a wrong picture got wrong, not only that it was wrong.
    """

    verdict: VerdictLabel
    raw: str = attrs.field(default="", converter=lambda v: "" if v is None else v)  # None: no text
    description: str = attrs.field(default="", converter=lambda v: "" if v is None else v)
    facets: Mapping[str, bool] = attrs.field(factory=dict, converter=_frozen_mapping)

    def __attrs_post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        for name in ("raw", "description"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"Verdict.{name} must be text, got {type(getattr(self, name)).__name__}")
        bad = {k: v for k, v in self.facets.items() if not isinstance(v, bool)}
        if bad:
            raise ValueError(f"facets must map names to true/false, got {bad}")

    def fields(self) -> dict[str, Any]:
        """The verdict as the run log stores it (a sample record's judge fields)."""
        out: dict[str, Any] = {"verdict": self.verdict, "judge_raw": self.raw,
                               "description": self.description}
        if self.facets:
            out["facets"] = dict(self.facets)
        return out


@attrs.frozen
class Turn:
    """One conversation turn; ``role`` is ``user`` or ``assistant``."""

    role: Literal["user", "assistant"]
    text: str


@attrs.frozen
class Conversation:
    """A text-only conversation used to train the understanding side (knowledge injection)."""

    id: str
    turns: tuple[Turn, ...]
