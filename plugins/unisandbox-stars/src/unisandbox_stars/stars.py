"""``stars``: self-training of the generation side on its own filtered think-mode images.

Per phase (one per level with ``order=curriculum``, levels 1 -> 2 -> 3; one phase with
``order=mixed``), per round:

I.   for the TRAIN-split prompts of the tasks, generate ``k`` candidates each in think mode
     (greedy reasoning by default: the k differ only in the image noise; ``think_temperature``
     > 0 samples a reasoning per candidate, so the filter chooses among attempts);
II.  judge each candidate (default ``self``: the model's own understanding) and keep the
     accepted ones (``no_filter=true`` keeps all: the rejection-sampling ablation);
III. fine-tune the generation parameters on (raw prompt -> accepted image), without the
     thinking text; the understanding side stays bit-identical. With ``distill > 0`` the raw
     prompt also learns the condition that drew the accepted image (the model's condition
     for the prompt with its own reasoning; models with the ``condition`` capability). With
     ``keep_think > 0`` the condition for the prompt *with* its reasoning is held where it was
     (trained on raw prompts only, the generator otherwise stops reading the plan). With
     ``internalize > 0`` the reasoning is taken away gradually, from its end, over that share
     of the steps before the raw prompt stands alone.

``candidates_from`` (another run's folder) copies that run's stage I of the first phase
instead of generating it again: the candidates are a function of the model, the prompts and
the seeds alone, so a filter ablation then compares on the very same images.

This module only checks the arguments (the CLI imports it at start-up); the stages live in
pipeline.py. See docs/trainers.md for the folder layout and every argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from unisandbox.protocols import Model, Trainer, TrainResult

from .common import json_arg, name_list
from .options import FinetuneOptions, _number, _positive_int

ORDERS = ("curriculum", "mixed")
DEFAULT_TASKS = ("math-1", "math-2", "math-3")
#: Stage-III optimizer steps per round (shared out over a curriculum's phases) when neither
#: steps nor epochs is given.
DEFAULT_STEPS = 240


class StarsTrainer(Trainer):
    """STARS; every argument is a ``--train-arg`` (see docs/trainers.md)."""

    #: what a ``None`` default means (``unisandbox train stars --help`` prints it)
    argument_notes: ClassVar[Mapping[str, str]] = {"steps": f"{DEFAULT_STEPS} a round when epochs is not given",
                      "epochs": "from steps", "judge_args": "{}, the judge's own defaults",
                      "micro_batch": "each process's share of the batch at once",
                      "candidates_from": "stage I draws its own"}

    def __init__(self, tasks: Any = DEFAULT_TASKS, n: int = 32, k: int = 4, world: str = "glyph",
                 task_seed: int = 0, judge: str = "self", judge_args: Any = None,
                 audit_judge: str | None = None, no_filter: bool = False,
                 order: str = "curriculum", replay: bool = True, rounds: int = 1,
                 steps: int | None = None, epochs: float | None = None,
                 max_epochs: float | None = 20, lr: float = 5e-4, batch_size: int = 16,
                 micro_batch: int | None = None, warmup: float = 0.05, schedule: str = "cosine",
                 seed: int = 0, save_every: int = 0, max_grad_norm: float | None = 1.0,
                 weight_decay: float = 0.0, log_every: int = 10, gen_batch: int = 64,
                 distill: float = 0.0, keep_think: float = 0.0, internalize: float = 0.0,
                 think_temperature: float = 0.0,
                 candidates_from: str | None = None, master_weights: bool = True,
                 progress: bool = True) -> None:
        self.tasks = name_list("tasks", tasks)
        self.n = _positive_int("n", n)
        self.k = _positive_int("k", k)
        if not isinstance(world, str) or not world:
            raise ValueError(f"world must be a world name (glyph, everyday), got {world!r}")
        self.world = world
        self.task_seed = _positive_int("task_seed", task_seed, 0)
        if not isinstance(judge, str) or not judge:
            raise ValueError(f"judge must be a registered judge name, got {judge!r}")
        self.judge = judge
        self.judge_args = json_arg("judge_args", judge_args)
        if audit_judge is not None and (not isinstance(audit_judge, str) or not audit_judge):
            raise ValueError(f"audit_judge must be a registered judge name, got {audit_judge!r}")
        self.audit_judge = audit_judge
        if not isinstance(no_filter, bool):
            raise ValueError(f"no_filter must be true or false, got {no_filter!r}")
        self.no_filter = no_filter
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        self.order = order
        if not isinstance(replay, bool):
            raise ValueError(f"replay must be true or false, got {replay!r}")
        self.replay = replay
        self.rounds = _positive_int("rounds", rounds)
        self.options = FinetuneOptions(
            steps=steps, epochs=epochs, lr=lr, batch_size=batch_size, micro_batch=micro_batch,
            warmup=warmup, schedule=schedule, seed=seed, save_every=save_every,
            max_grad_norm=max_grad_norm, weight_decay=weight_decay, log_every=log_every,
            master_weights=master_weights)
        number = isinstance(max_epochs, (int, float)) and not isinstance(max_epochs, bool)
        if max_epochs is not None and (not number or max_epochs <= 0):
            raise ValueError(f"max_epochs must be a positive number (or null), got {max_epochs!r}")
        self.max_epochs = max_epochs
        self.gen_batch = _positive_int("gen_batch", gen_batch)
        self.distill = _weight("distill", distill)
        self.keep_think = _weight("keep_think", keep_think)
        self.internalize = _weight("internalize", internalize)
        if self.internalize > 1:
            raise ValueError(f"internalize must be a share of stage III's steps, 0 to 1 (0: off), "
                             f"got {internalize!r}")
        self.think_temperature = _weight("think_temperature", think_temperature, zero="greedy reasoning")
        if candidates_from is not None and (not isinstance(candidates_from, str | Path)
                                            or not str(candidates_from)):
            raise ValueError(f"candidates_from must be the folder of another stars run, got "
                             f"{candidates_from!r}")
        #: stage I of the first phase is copied from this run (same model, prompts and seeds:
        #: the same candidates), so that ablations of stages II-III compare on one sample
        self.candidates_from = str(Path(candidates_from).resolve()) if candidates_from else None
        if not isinstance(progress, bool):
            raise ValueError(f"progress must be true or false, got {progress!r}")
        self.progress = progress

    def arguments(self) -> dict[str, Any]:
        """What identifies this run in trainer.json (progress output left out)."""
        return {"tasks": list(self.tasks), "n": self.n, "k": self.k, "world": self.world,
                "task_seed": self.task_seed, "judge": self.judge, "judge_args": self.judge_args,
                "audit_judge": self.audit_judge, "no_filter": self.no_filter,
                "order": self.order, "replay": self.replay, "rounds": self.rounds, "options": self.options.to_json(),
                "max_epochs": self.max_epochs,
                "gen_batch": self.gen_batch,
                # only when on: run folders written before the option existed still resume
                **({"distill": self.distill} if self.distill else {}),
                **({"keep_think": self.keep_think} if self.keep_think else {}),
                **({"internalize": self.internalize} if self.internalize else {}),
                **({"think_temperature": self.think_temperature} if self.think_temperature else {}),
                **({"candidates_from": self.candidates_from} if self.candidates_from else {})}

    def train(self, model: Model, out_dir: Path) -> TrainResult:
        from .pipeline import StarsRun

        return StarsRun(self, model, out_dir).run()


def _weight(name: str, value: Any, zero: str = "off") -> float:
    """A loss weight (or a temperature): a finite number >= 0; ``zero`` says what 0 means."""
    try:
        weight = _number(name, value)
    except ValueError:
        weight = -1.0
    if weight < 0:
        raise ValueError(f"{name} must be a number >= 0 (0: {zero}), got {value!r}")
    return weight
