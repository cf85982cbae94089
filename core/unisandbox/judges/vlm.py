"""The two-stage VLM protocol every vision-language judge shares, whatever serves the model.

Stage 1 sends the image with the family's ``describe`` prompt and reads a short description;
a short-circuit description (``Error``, ``Reject``) scores ``no`` with no stage 2, as the
original scorer does. Stage 2 sends only text (the description and the expected answer) and
reads the first ``Score: YES|NO``. A failed call, an empty description or a reply with no
parsable score is verdict ``error`` with the raw text kept, never a silent ``no``.

Backends supply the calls: :func:`judge_each` drives one item at a time (for a server judged
from a thread pool, so no item waits for a slower one), :func:`judge_batched` drives the
items stage by stage (for a local model decoding batches).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs

from ..records import JudgeItem, Verdict
from .templates import Template, missing_families, resolve_templates

#: Bump when the reading rules below change: it is part of every VLM judge's identity.
PROTOCOL_VERSION = "two-stage/1"
_SCORE = re.compile(r"Score\s*\**\s*:\s*[*\[\s]*(YES|NO)\b", re.IGNORECASE)


@attrs.frozen
class ChatRequest:
    """One chat turn: a text prompt, with an image for stage 1."""

    text: str
    image: Path | None = None


@attrs.frozen
class Reply:
    """A backend's answer: ``text`` when the call worked, else ``error`` (and any ``raw`` body)."""

    text: str | None
    error: str = ""
    raw: str = ""

    @property
    def ok(self) -> bool:
        return self.text is not None


def read_score(text: str) -> str | None:
    """``yes``/``no`` from the first ``Score: YES|NO`` in ``text``; None when there is none."""
    match = _SCORE.search(text)
    return match.group(1).lower() if match else None


def _failed(stage: str, reply: Reply, before: str = "") -> Verdict:
    shown = f"\n{reply.raw}" if reply.raw else ""
    return Verdict("error", raw=f"{before}{stage}: {reply.error}{shown}")


class TwoStage:
    """The protocol's steps for one item; backends call them in order."""

    def __init__(self, templates: Mapping[str, Template]) -> None:
        self.templates = dict(templates)

    @classmethod
    def for_tasks(cls, tasks: Sequence[object] = ()) -> TwoStage:
        """The protocol with the built-in templates and the ``tasks``' own; a task whose family
        has no template is refused when the judge is built, not item by item later."""
        templates = resolve_templates(tasks)
        missing = missing_families(tasks, templates)
        if missing:
            raise ValueError(f"no judge template for {', '.join(missing)}; a task can bring "
                             "one in Task.judge_templates (see docs/judges.md)")
        return cls(templates)

    def first(self, item: JudgeItem) -> ChatRequest | Verdict:
        template = self.templates.get(item.family)
        if template is None:
            known = ", ".join(sorted(self.templates)) or "none"
            return Verdict("error", raw=f"no judge template for family {item.family!r} "
                                        f"(task {item.task!r}); known: {known}")
        if not item.image_path.is_file():
            return Verdict("error", raw=f"image not found: {item.image_path.name}")
        return ChatRequest(template.describe, item.image_path)

    def second(self, item: JudgeItem, reply: Reply) -> ChatRequest | Verdict:
        if not reply.ok:
            return _failed("stage 1", reply)
        template = self.templates[item.family]
        description = template.read_description(reply.text or "")
        raw = f"[stage 1]\n{reply.text}"
        if not description:
            return Verdict("error", raw=raw + "\n[no description in the stage-1 reply]")
        if template.is_short_circuit(description):
            return Verdict("no", raw=raw + f"\n[{description}: scored NO without stage 2]",
                           description=description)
        return ChatRequest(template.compare_prompt(description, item.sample.answer))

    def verdict(self, item: JudgeItem, first: Reply, reply: Reply) -> Verdict:
        template = self.templates[item.family]
        description = template.read_description(first.text or "")
        before = f"[stage 1]\n{first.text}\n\n"
        if not reply.ok:
            return attrs.evolve(_failed("stage 2", reply, before), description=description)
        raw = f"{before}[stage 2]\n{reply.text}"
        score = read_score(reply.text or "")
        if score is None:
            return Verdict("error", raw=raw + "\n[no 'Score: YES|NO' in the stage-2 reply]",
                           description=description)
        return Verdict(score, raw=raw, description=description)


def judge_each(protocol: TwoStage, item: JudgeItem, ask: Callable[[ChatRequest], Reply]) -> Verdict:
    """Both stages for one item with a blocking ``ask``."""
    step = protocol.first(item)
    if isinstance(step, Verdict):
        return step
    first = ask(step)
    step = protocol.second(item, first)
    if isinstance(step, Verdict):
        return step
    return protocol.verdict(item, first, ask(step))


def judge_batched(protocol: TwoStage, items: Sequence[JudgeItem],
                  ask_many: Callable[[Sequence[ChatRequest]], list[Reply]]) -> list[Verdict]:
    """Both stages for a batch: every stage-1 call in one ``ask_many``, then every stage 2."""
    out: dict[int, Verdict] = {}
    stage1: list[tuple[int, ChatRequest]] = []
    for i, item in enumerate(items):
        step = protocol.first(item)
        if isinstance(step, Verdict):
            out[i] = step
        else:
            stage1.append((i, step))
    firsts: dict[int, Reply] = {}
    stage2: list[tuple[int, ChatRequest]] = []
    for (i, _), reply in zip(stage1, _ask(ask_many, [r for _, r in stage1]), strict=True):
        firsts[i] = reply
        step = protocol.second(items[i], reply)
        if isinstance(step, Verdict):
            out[i] = step
        else:
            stage2.append((i, step))
    for (i, _), reply in zip(stage2, _ask(ask_many, [r for _, r in stage2]), strict=True):
        out[i] = protocol.verdict(items[i], firsts[i], reply)
    return [out[i] for i in range(len(items))]


def _ask(ask_many: Callable[[Sequence[ChatRequest]], list[Reply]],
         requests: list[ChatRequest]) -> list[Reply]:
    if not requests:
        return []
    replies = ask_many(requests)
    if len(replies) != len(requests):
        raise RuntimeError(f"backend returned {len(replies)} replies for {len(requests)} requests")
    return replies
