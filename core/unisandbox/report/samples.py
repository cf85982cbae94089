"""Which items the image grid shows: a few per task, the same each time, the telling ones first.

Items where normal and think disagree say most about thinking, so they come first; within each
kind, items are spread over the levels and ordered by a hash of (task, item), so the choice is
deterministic yet not simply the first ids (which are often all one level).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..records import UNDERSTANDING


@dataclass
class GridItem:
    """One task item (a sample, or an A/B pair): its records per mode."""

    task: str
    key: str
    level: Any
    #: mode -> the item's sample records (one, or the pair's members in id order)
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    understanding: list[dict[str, Any]] = field(default_factory=list)

    def verdict(self, mode: str) -> str | None:
        """The unit verdict, as the aggregation counts it (a pair is right only if both are)."""
        got = [r.get("verdict") for r in self.members.get(mode, [])]
        if not got:
            return None
        return "no" if "no" in got else "error" if "error" in got else "yes"


def _order(task: str, key: str) -> str:
    return hashlib.sha256(f"{task}\0{key}".encode()).hexdigest()


def _round_robin(items: Sequence[GridItem]) -> list[GridItem]:
    by_level: dict[str, list[GridItem]] = defaultdict(list)
    for item in sorted(items, key=lambda it: _order(it.task, it.key)):
        by_level[str(item.level)].append(item)
    queues = [by_level[k] for k in sorted(by_level)]
    out: list[GridItem] = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


def grid_items(records: Mapping[tuple[str, str, str], dict[str, Any]], task: str,
               modes: Sequence[str], k: int = 6) -> list[GridItem]:
    """Up to ``k`` items of ``task`` that have an image in every one of ``modes``.

    ``records`` may hold every task's records or (faster for big runs) only this task's.
    """
    items: dict[str, GridItem] = {}
    mine = sorted((key, r) for key, r in records.items() if key[0] == task)
    for (_t, mode, _sid), record in mine:
        key = str(record.get("group") or record["id"])
        item = items.setdefault(key, GridItem(task, key, record.get("level")))
        if mode == UNDERSTANDING:
            item.understanding.append(record)
        elif mode in modes:
            item.members.setdefault(mode, []).append(record)
    complete = [it for it in items.values() if all(it.members.get(m) for m in modes)]
    for item in complete:
        for mode in item.members:
            item.members[mode].sort(key=lambda r: str(r["id"]))
    if len(modes) > 1:
        differ = [it for it in complete if len({it.verdict(m) for m in modes}) > 1]
        same = [it for it in complete if len({it.verdict(m) for m in modes}) == 1]
    else:
        differ, same = [], complete
    return (_round_robin(differ) + _round_robin(same))[:k]
