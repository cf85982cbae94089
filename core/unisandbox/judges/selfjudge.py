"""``self``: the model under test judges its own images through its ``understand`` capability.

This is the filter STARS uses. ``mode=verdict`` (the default): the model sees its image and the
ORIGINAL generation prompt (not the expected answer), reasons briefly and ends with ``Final
Answer: YES|NO``. The sandbox model's language side is trained on exactly
:func:`filter_prompt`'s format, so the text and its version are part of the judge identity.
``use_answer=true`` shows the expected answer instead of the prompt (a label-aware ablation).

``mode=consistency``: the model answers the task's own question without the picture (``chat``),
describes the picture (``understand``), and the task's ``consistent`` compares the two — a
small model that cannot compare in context (docs/judges.md) still filters by what it knows.
The model loads on the first ``judge`` call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import UserError
from ..protocols import returns
from ..protocols.judge import Judge
from ..protocols.model import Model
from ..protocols.task import Task
from ..records import JudgeItem, Verdict

FILTER_VERSION = "2"
MODES = ("verdict", "consistency")
#: what ``mode=consistency`` asks about each image (a question any captioning model answers)
DESCRIBE_QUESTION = "What does the image show?"
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
                 batch_size: int = 16, mode: str = "verdict", tasks: Sequence[Task] = ()) -> None:
        if not callable(model_loader):
            raise TypeError("model_loader must be a zero-argument callable returning the model")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "consistency" and use_answer:
            raise ValueError("use_answer applies to mode=verdict only (consistency never sees the answer)")
        self._loader = model_loader
        self._model: Model | None = None
        self.use_answer = bool(use_answer)
        self.batch_size = int(batch_size)
        self.mode = mode
        self.tasks = {t.name: t for t in tasks}

    def identity(self) -> dict[str, Any]:
        # the model itself is the run's model (config.json names it); loading it here to hash
        # it would defeat the lazy loading
        if self.mode == "consistency":
            return {"kind": "self", "mode": self.mode, "describe_question": DESCRIBE_QUESTION}
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
        ready: list[tuple[int, Any]] = []
        for i, item in enumerate(items):
            try:
                with Image.open(item.image_path) as image:
                    ready.append((i, image.convert("RGB")))
            except (OSError, Image.DecompressionBombError) as exc:  # a huge image is unreadable too
                out[i] = Verdict("error", raw=f"cannot read image {item.image_path.name}: {exc}")
        if self.mode == "consistency":
            self._by_consistency(items, ready, out)
        else:
            replies = self._understand([im for _, im in ready], [self.question(items[i]) for i, _ in ready])
            for (i, _), reply in zip(ready, replies, strict=True):
                answer = read_final_answer(reply)
                out[i] = (Verdict(answer, raw=reply) if answer else
                          Verdict("error", raw=reply + "\n[no 'Final Answer: YES|NO' in the reply]"))
        return [v for v in out if v is not None]

    def _understand(self, images: list[Any], questions: list[str]) -> list[str]:
        return self._batched(self.model.understand, images, questions, name="understand")

    def _batched(self, call: Callable[..., list[str]], *columns: list[Any], name: str) -> list[str]:
        """``call`` on ``batch_size`` rows of ``columns`` at a time; one reply per row."""
        replies: list[str] = []
        for start in range(0, len(columns[0]), self.batch_size):
            rows = [c[start : start + self.batch_size] for c in columns]
            replies += returns.returned(self.model, name, call(*rows), str, len(rows[0]))
        return replies

    def _by_consistency(self, items: Sequence[JudgeItem], ready: list[tuple[int, Any]],
                        out: list[Verdict | None]) -> None:
        """The model's own answer (text only, once per question) against its description."""
        declared = getattr(self.model, "capabilities", None)
        if ("chat" not in declared) if declared is not None else not hasattr(self.model, "chat"):
            raise UserError("the self judge's mode=consistency asks the model the task's question "
                            "in text: the model has no 'chat' capability")
        usable = []
        for i, image in ready:
            item = items[i]
            if item.task not in self.tasks:
                out[i] = Verdict("error", raw=f"mode=consistency needs the task {item.task!r} "
                                              "(the judge was built without it)")
            elif not item.sample.question:
                out[i] = Verdict("error", raw=f"sample {item.sample.id} of {item.task} has no question")
            else:
                usable.append((i, image))
        questions = sorted({items[i].sample.question for i, _ in usable})
        own = dict(zip(questions, self._batched(self.model.chat, questions, name="chat"), strict=True))
        descriptions = self._understand([im for _, im in usable], [DESCRIBE_QUESTION] * len(usable))
        for (i, _), description in zip(usable, descriptions, strict=True):
            item = items[i]
            reply = own[item.sample.question]
            raw = f"own answer: {reply}\ndescription: {description}"
            try:
                ok = self.tasks[item.task].consistent(item.sample, reply, description)
            except NotImplementedError as exc:
                out[i] = Verdict("error", raw=f"{raw}\n[{exc}]", description=description)
                continue
            if ok is None:
                raw += "\n[the own answer states no usable answer]"
            out[i] = Verdict("yes" if ok else "no", raw=raw, description=description)
