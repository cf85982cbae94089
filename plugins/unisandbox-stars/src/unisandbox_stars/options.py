"""Fine-tuning options shared by both trainers, checked when the trainer is built.

Warm-up is a FRACTION of the run: the original recipe's fixed 2,000 warm-up steps were longer
than its whole run, so its learning rate never reached the value it asked for. A fraction
cannot make that mistake, and an integer >= 1 is refused with a message saying so.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

SCHEDULES = ("cosine", "constant")
#: options that change how often a run logs and saves, not what it computes: a resumed run
#: may change them (add ``save_every`` to a run that was interrupted, say)
BOOKKEEPING = ("save_every", "log_every")


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class FinetuneOptions:
    """How one fine-tuning run goes; ``steps`` or ``epochs`` sets its length.

    ``batch_size`` is the GLOBAL batch: under torchrun each rank takes its share of the same
    batch, so the run does not depend on the number of processes. ``micro_batch`` splits a
    batch into pieces whose gradients add up (memory; and the unit ranks share): the default
    is one piece per rank. Give it explicitly to make runs on different numbers of
    processes equal (each piece's loss is a mean over its own tokens).
    """

    steps: int | None = None
    epochs: float | None = None
    lr: float = 1e-3
    batch_size: int = 16
    micro_batch: int | None = None
    warmup: float = 0.05
    schedule: str = "cosine"
    seed: int = 0
    max_grad_norm: float | None = 1.0
    weight_decay: float = 0.0
    save_every: int = 0
    log_every: int = 10
    master_weights: bool = True

    def __attrs_post_init__(self) -> None:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        if self.steps is not None:
            _positive_int("steps", self.steps)
        if self.epochs is not None and _number("epochs", self.epochs) <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs!r}")
        if _number("lr", self.lr) <= 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        _positive_int("batch_size", self.batch_size)
        if self.micro_batch is not None:
            _positive_int("micro_batch", self.micro_batch)
        warmup = _number("warmup", self.warmup)
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup is a fraction of the run (0 <= warmup < 1, e.g. 0.05), "
                             f"not a number of steps; got {self.warmup!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        _positive_int("seed", self.seed, 0)
        if self.max_grad_norm is not None and _number("max_grad_norm", self.max_grad_norm) <= 0:
            raise ValueError(f"max_grad_norm must be positive (or null for none), got {self.max_grad_norm!r}")
        if _number("weight_decay", self.weight_decay) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        _positive_int("save_every", self.save_every, 0)
        _positive_int("log_every", self.log_every)
        if not isinstance(self.master_weights, bool):
            raise ValueError(f"master_weights must be true or false, got {self.master_weights!r}")

    def total_steps(self, n_examples: int, default_epochs: float = 1.0) -> int:
        """Optimizer steps for ``n_examples`` (``epochs`` passes, rounded up; ``steps`` as given)."""
        if self.steps is not None:
            return int(self.steps)
        epochs = self.epochs if self.epochs is not None else default_epochs
        return max(1, math.ceil(epochs * n_examples / self.batch_size))

    def micro_size(self, world: int) -> int:
        """Examples per gradient piece (the default: one piece per rank)."""
        if self.micro_batch is not None:
            return min(self.micro_batch, self.batch_size)
        return max(1, math.ceil(self.batch_size / world))

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        if self.master_weights:  # the default is left out: run folders written before it resume
            del out["master_weights"]
        return out

    def identity(self) -> dict[str, Any]:
        """What changes the numbers a run computes: everything but :data:`BOOKKEEPING`."""
        return {k: v for k, v in self.to_json().items() if k not in BOOKKEEPING}


def warmup_steps(fraction: float, total: int) -> int:
    """Warm-up steps for a run of ``total`` steps: always shorter than the run."""
    if fraction <= 0 or total <= 1:
        return 0
    return min(total - 1, max(1, round(fraction * total)))


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate multiplier at ``step`` (0-based): linear warm-up, then cosine to 0 at
    ``total`` or constant."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
