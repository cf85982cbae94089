"""The judge protocol: batched verdicts, with an identity that keys the cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..records import JudgeItem, Verdict


class Judge:
    """Base class of every judge (see PLUGINS.md, "register_judges").

    ``judge`` gets a batch and returns one :class:`Verdict` per item, in order. A judge that
    cannot decide returns ``Verdict("error", raw=...)`` and never raises for one bad item.
    """

    def identity(self) -> dict[str, Any]:
        """Kind, judge model id and template hash: the cache key's judge part."""
        return {"kind": type(self).__name__}

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections or models."""
