"""A verdict cache kept with the run: re-scoring with the same judge makes no calls.

Key = sha256(judge identity) + image sha256 + task family + expected answer (text and
structured target) + the prompt. Errors are not cached, so a re-score retries them.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataWarning
from ..paths import file_sha256
from ..protocols import returns
from ..protocols.judge import Judge
from ..records import JudgeItem, Verdict
from ..run.store import JsonlLog


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _entries(file: Path) -> list[dict[str, Any]]:
    """A cache file's usable entries. A damaged one (hand-edited, a foreign file, a line that
    is not JSON) is only a verdict to compute again: it is skipped, with one warning naming the
    first such line."""
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    for number, entry in JsonlLog(file).numbered(on_corrupt=lambda n: bad.append((n, "(not JSON)"))):
        problem = _problem(entry)
        if problem is None:
            good.append({**entry, "raw": entry.get("raw") or "", "description": entry.get("description") or ""})
        else:
            bad.append((number, problem))
    if bad:
        line, field = min(bad)
        warnings.warn(f"{file}:{line}: field {field!r}: not a cached verdict; {len(bad)} such "
                      f"entr{'y is' if len(bad) == 1 else 'ies are'} judged again", DataWarning, stacklevel=2)
    return good


def _problem(entry: Any) -> str | None:
    """The first field a cache entry lacks or has wrong, None when it is whole (``raw`` and
    ``description`` may be null: a judge that gives none)."""
    if not isinstance(entry, dict):
        return "key"
    for field, optional in (("key", False), ("verdict", False), ("raw", True), ("description", True)):
        value = entry.get(field)
        if not (isinstance(value, str) or (optional and value is None)):
            return field
    if entry["verdict"] not in ("yes", "no"):
        return "verdict"
    facets = entry.get("facets") or {}
    if not isinstance(facets, dict) or not all(isinstance(k, str) and isinstance(v, bool) for k, v in facets.items()):
        return "facets"
    return None


class CachedJudge(Judge):
    """Wraps any judge; ``misses`` counts the items that reached the inner judge.

    Under torchrun each rank appends to its own file (``judge_cache.rank1.jsonl`` ...) and
    every rank reads them all, so no two processes ever append to one file.
    """

    def __init__(self, inner: Judge, path: Path, rank: int = 0,
                 read_from: Sequence[Path] = ()) -> None:
        self.inner = inner
        own = path if rank == 0 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")
        self.log = JsonlLog(own)
        self.log.repair()
        self.judge_key = identity_hash(inner.identity())
        self.entries: dict[str, dict[str, Any]] = {}
        # ``read_from``: another folder's caches, read and never written (scoring an eval run
        # into a folder of its own reuses the run's verdicts without touching the run)
        for file in [*read_from, *sorted(path.parent.glob(f"{path.stem}*{path.suffix}"))]:
            if file in read_from or file == path or file.name.startswith(f"{path.stem}.rank"):
                self.entries.update((r["key"], r) for r in _entries(file))
        self.hits = 0
        self.misses = 0
        self._reached = False

    def reach(self) -> None:
        """A judge that can say whether it is reachable (a server's ``ping``) is asked once,
        before its first call: a server that is down stops the work at once with its reason,
        not after every item has spent its retries."""
        ping = getattr(self.inner, "ping", None)
        if not self._reached and callable(ping):
            ping()
        self._reached = True

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def key(self, item: JudgeItem) -> str:
        # the prompt is part of the key: a judge that reads it (``self``) may decide
        # differently for the same image and answer
        expected = json.dumps([item.family, item.sample.answer, dict(item.sample.target),
                               item.sample.prompt], sort_keys=True, default=str)
        try:
            image = file_sha256(item.image_path)
        except OSError:  # missing/unreadable: the inner judge says so (errors are not cached)
            image = f"unreadable:{item.image_path}"
        parts = (self.judge_key, image, expected)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        keys = [self.key(item) for item in items]
        todo = [i for i, k in enumerate(keys) if k not in self.entries]
        self.hits += len(items) - len(todo)
        self.misses += len(todo)
        if todo:
            self.reach()
            fresh = returns.returned(self.inner, "judge", self.inner.judge([items[i] for i in todo]),
                                     Verdict, len(todo))
            new = []
            for i, verdict in zip(todo, fresh, strict=True):
                if verdict.verdict != "error":
                    entry = {"key": keys[i], "verdict": verdict.verdict, "raw": verdict.raw,
                             "description": verdict.description, "facets": dict(verdict.facets)}
                    self.entries[keys[i]] = entry
                    new.append(entry)
                else:
                    self.entries.pop(keys[i], None)
            self.log.append(new)
            fresh_by_index = dict(zip(todo, fresh, strict=True))
        else:
            fresh_by_index = {}
        out = []
        for i, k in enumerate(keys):
            if i in fresh_by_index:
                out.append(fresh_by_index[i])
            else:
                e = self.entries[k]
                out.append(Verdict(e["verdict"], raw=e["raw"], description=e["description"],
                                   facets=e.get("facets") or {}))
        return out

    def close(self) -> None:
        self.inner.close()
