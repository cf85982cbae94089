"""``inject``: knowledge injection, supervised fine-tuning of the understanding side only.

Data: conversation JSONL in the published ``knowledge_train`` format
(``{"id", "conversations": [{"from": "human"|"gpt", "value"}, ...]}``), as files or folders,
read with the core's strict reader (bad lines are DataErrors naming file, line and field).
The published folder holds each pair file AND its two single files, so identical
conversations are kept once. Loss: the model's ``text_loss`` (cross-entropy on assistant
turns). Parameters: ``understanding`` only; generation stays bit-identical.

This module imports no torch (the CLI loads it at start-up); training lives in finetune.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from unisandbox.paths import file_sha256, jsonl_files
from unisandbox.protocols import Model, Trainer, TrainResult
from unisandbox.records import Conversation

from .common import check_run_folder, stderr_log
from .options import FinetuneOptions

#: Passes over the corpus when neither steps nor epochs is given.
DEFAULT_EPOCHS = 12.0


def data_files(data: Any) -> list[Path]:
    """The JSONL files named by ``data``: a path, a folder (its *.jsonl, sorted) or a list."""
    if isinstance(data, (str, Path)):
        items: Sequence[Any] = [data]
    elif isinstance(data, (list, tuple)) and data:
        items = data
    else:
        raise ValueError(f"data must be a path or a list of paths to conversation JSONL, got {data!r}")
    files: list[Path] = []
    for item in items:
        if not isinstance(item, (str, Path)):
            raise ValueError(f"data: expected a path, got {item!r}")
        path = Path(item).expanduser()
        if path.is_dir():
            found = jsonl_files(path)
            if not found:
                raise FileNotFoundError(f"data folder {path} holds no *.jsonl files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"data file {path} does not exist")
    return list(dict.fromkeys(files))


def load_conversations(files: Sequence[Path]) -> tuple[list[Conversation], int]:
    """Every conversation of ``files`` once (identical repeats dropped), and how many dropped."""
    from unisandbox.tasks.published import read_conversations

    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    out: list[Conversation] = []
    dropped = 0
    for path in files:
        for conv in read_conversations(path):
            key = (conv.id, tuple((t.role, t.text) for t in conv.turns))
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            out.append(conv)
    return out, dropped


class InjectTrainer(Trainer):
    """Knowledge injection; every argument is a ``--train-arg`` (see docs/trainers.md)."""

    #: what a ``None`` default means (``unisandbox train inject --help`` prints it)
    argument_notes: ClassVar[Mapping[str, str]] = {"steps": "from epochs", "epochs": f"{DEFAULT_EPOCHS:g} when steps is not given",
                      "micro_batch": "each process's share of the batch at once"}

    def __init__(self, data: Any, steps: int | None = None, epochs: float | None = None,
                 lr: float = 1e-3, batch_size: int = 16, micro_batch: int | None = None,
                 warmup: float = 0.05, schedule: str = "cosine", seed: int = 0,
                 save_every: int = 0, max_grad_norm: float | None = 1.0,
                 weight_decay: float = 0.0, log_every: int = 10, master_weights: bool = True,
                 progress: bool = True) -> None:
        self.files = data_files(data)
        self.options = FinetuneOptions(
            steps=steps, epochs=epochs, lr=lr, batch_size=batch_size, micro_batch=micro_batch,
            warmup=warmup, schedule=schedule, seed=seed, save_every=save_every,
            max_grad_norm=max_grad_norm, weight_decay=weight_decay, log_every=log_every,
            master_weights=master_weights)
        if not isinstance(progress, bool):
            raise ValueError(f"progress must be true or false, got {progress!r}")
        self.progress = progress

    def train(self, model: Model, out_dir: Path) -> TrainResult:
        from unisandbox.distributed import get_dist

        from .finetune import finetune

        dist = get_dist()
        conversations, dropped = load_conversations(self.files)
        data = [{"file": p.name, "sha256": file_sha256(p)} for p in self.files]
        data_key = "|".join(d["sha256"] for d in data)
        out_dir.mkdir(parents=True, exist_ok=True)
        check_run_folder(out_dir, {"trainer": "inject", "options": self.options.to_json(),
                                   "data": data, "model": model.identity()}, dist.is_main)
        log = stderr_log(dist.is_main)
        log(f"inject: {len(conversations)} conversations from {len(self.files)} file(s)"
            + (f" ({dropped} repeats dropped)" if dropped else ""))
        metrics = finetune(model, "understanding", conversations,
                           lambda batch, seed, step: model.text_loss(batch), self.options, out_dir,
                           data_key=data_key, desc="inject", progress=self.progress,
                           default_epochs=DEFAULT_EPOCHS, log=log)
        metrics = {**metrics, "conversations": len(conversations), "repeats_dropped": dropped}
        return TrainResult(checkpoint=out_dir / "model", metrics=metrics)
