"""The task protocol: samples, the output contract, the aggregation unit and U scoring."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..answers import reply_matches
from ..paths import safe_name
from ..records import Sample


class Task:
    """Base class of every task (see PLUGINS.md, "register_tasks").

    ``family`` picks the judge protocol (``math``, ``mapping``, ``knowledge`` or a family a
    plugin brings with its own templates); ``unit`` is ``item`` or ``pair`` (a pair is right
    only when every member of ``Sample.group`` is right).
    """

    name: str = "task"
    family: str = "custom"
    unit: Literal["item", "pair"] = "item"
    #: Judge templates this task brings, family -> template (see judges.templates).
    judge_templates: Mapping[str, Any] = {}

    def samples(self) -> Sequence[Sample]:
        raise NotImplementedError

    def image_name(self, sample: Sample) -> str:
        """The file name this sample's image has (the published scorer's convention)."""
        return safe_name(sample.id) + ".png"

    def check_understanding(self, sample: Sample, reply: str) -> bool:
        """Is ``reply`` a right text answer to ``sample.question``?"""
        distractors = sample.meta.get("distractors", ())
        return reply_matches(reply, sample.question_answer, distractors)

    def consistent(self, sample: Sample, reply: str, description: str) -> bool | None:
        """Does an image described as ``description`` show what the model's own ``reply`` to
        ``sample.question`` implies it should? None: the reply states no usable answer.

        The ``self`` judge's ``mode=consistency`` filter: the model answers the question
        without the picture, describes the picture, and this compares the two, so the
        expected answer never enters (only the model's own). Optional; a task without it
        gets ``error`` verdicts from that filter.
        """
        raise NotImplementedError(f"task {self.name!r} does not implement consistent()")

    def identity(self) -> dict[str, Any]:
        """What identifies this task's data in config.json."""
        return {"name": self.name, "family": self.family, "unit": self.unit,
                "n": len(self.samples()), "data_sha256": self.data_hash()}

    def data_hash(self) -> str:
        h = hashlib.sha256()
        for sample in self.samples():
            h.update(json.dumps(sample.to_json(), sort_keys=True).encode())
        return h.hexdigest()
