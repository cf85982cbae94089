"""Entry point of the unisandbox-stars plugin: the ``inject`` and ``stars`` trainers.

Import-light on purpose (the CLI imports every plugin module at start-up): the trainer
classes only validate their arguments at construction; torch loads inside ``train``.
"""

from __future__ import annotations

from collections.abc import Callable

from unisandbox import capabilities as caps
from unisandbox.hookspecs import hookimpl
from unisandbox.specs import TrainerSpec

from .inject import InjectTrainer
from .stars import StarsTrainer

PLUGIN_API_VERSION = 1


@hookimpl
def register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    register(TrainerSpec(
        name="inject", factory=InjectTrainer, requires={caps.TRAIN_UNDERSTANDING},
        description="knowledge injection: fine-tune the understanding side on conversation JSONL (data=)",
    ))
    register(TrainerSpec(
        name="stars", factory=StarsTrainer, requires={caps.GENERATE, caps.TRAIN_GENERATION},
        description="STARS: K think-mode candidates per train prompt, keep what a judge accepts, "
                    "fine-tune generation on them",
    ))
