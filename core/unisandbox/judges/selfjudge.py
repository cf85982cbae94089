"""``self``: the model under test judges its own images through its ``understand`` capability.

This is the filter STARS uses: the model sees its image and the ORIGINAL generation prompt
(not the expected answer), reasons briefly and ends with ``Final Answer: YES|NO``. The sandbox
model's language side is trained on exactly :func:`filter_prompt`'s format, so the text and
its version are part of the judge identity. ``use_answer=true`` shows the expected answer
instead of the prompt (a label-aware ablation). The model loads on the first ``judge`` call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..protocols.judge import Judge
from ..protocols.model import Model
from ..records import JudgeItem, Verdict

FILTER_VERSION = "2"
_FINAL = re.compile(r"Final\s+Answer\s*\**\s*:", re.IGNORECASE)
_WORD = re.compile(r"[*\[\s`]*(YES|NO)\b", re.IGNORECASE)

# Short on purpose: a model judges many images, and a small model reads every token of it.
_INSTRUCTIONS = ("Does the image follow it exactly: the right kind of object, the right number, "
                 "nothing else? Work out what is asked, say what the image shows, then end with "
                 "Final Answer: YES or Final Answer: NO.")


def filter_prompt(prompt: str) -> str:
    """The question the model answers about its own image generated from ``prompt``."""
    return f"Instruction: {prompt} {_INSTRUCTIONS}"


def answer_prompt(answer: str) -> str:
    """The label-aware variant: the image is checked against the expected answer itself."""
    return f"The image should show exactly: {answer}. {_INSTRUCTIONS}"


def read_final_answer(text: str) -> str | None:
    """``yes``/``no`` from the LAST ``Final Answer:`` (reasoning may quote the format earlier).

    None when there is none, or when the last one is followed by neither YES nor NO.
    """
    last = None
    for last in _FINAL.finditer(text):  # noqa: B007  (the last match is what counts)
        pass
    if last is None:
        return None
    word = _WORD.match(text, last.end())
    return word.group(1).lower() if word else None


def _prompt_hash() -> str:
    return hashlib.sha256((filter_prompt("{prompt}") + "\0" + answer_prompt("{answer}")).encode()).hexdigest()


class SelfJudge(Judge):
    """Verdicts from the model under test; ``model_loader`` is called on the first judge call."""

    def __init__(self, model_loader: Callable[[], Model], use_answer: bool = False,
                 batch_size: int = 16) -> None:
        if not callable(model_loader):
            raise TypeError("model_loader must be a zero-argument callable returning the model")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._loader = model_loader
        self._model: Model | None = None
        self.use_answer = bool(use_answer)
        self.batch_size = int(batch_size)

    def identity(self) -> dict[str, Any]:
        # the model itself is the run's model (config.json names it); loading it here to hash
        # it would defeat the lazy loading
        return {"kind": "self", "filter_version": FILTER_VERSION, "filter_sha256": _prompt_hash(),
                "use_answer": self.use_answer}

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = self._loader()
        return self._model

    def question(self, item: JudgeItem) -> str:
        return answer_prompt(item.sample.answer) if self.use_answer else filter_prompt(item.sample.prompt)

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        from PIL import Image

        out: list[Verdict | None] = [None] * len(items)
        ready: list[tuple[int, Any, str]] = []
        for i, item in enumerate(items):
            try:
                with Image.open(item.image_path) as image:
                    ready.append((i, image.convert("RGB"), self.question(item)))
            except OSError as exc:
                out[i] = Verdict("error", raw=f"cannot read image {item.image_path.name}: {exc}")
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start : start + self.batch_size]
            replies = self.model.understand([c[1] for c in chunk], [c[2] for c in chunk])
            if len(replies) != len(chunk):
                raise RuntimeError(f"understand returned {len(replies)} replies for {len(chunk)} images")
            for (i, _, _), reply in zip(chunk, replies, strict=True):
                answer = read_final_answer(reply)
                out[i] = (Verdict(answer, raw=reply) if answer else
                          Verdict("error", raw=reply + "\n[no 'Final Answer: YES|NO' in the reply]"))
        return [v for v in out if v is not None]
