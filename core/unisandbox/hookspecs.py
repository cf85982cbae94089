"""The four hooks of the ``unisandbox`` pluggy project.

Each hook receives a ``register`` callback; call it once per record. Keep hook bodies
cheap: import torch and model code inside the factories, not at module import, so that
``unisandbox --help`` and ``plugins list`` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .specs import JudgeSpec, ModelSpec, TaskSpec, TrainerSpec

PROJECT = "unisandbox"
ENTRY_POINT_GROUP = "unisandbox"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register unified models: ``register(ModelSpec(name=..., factory=..., ...))``."""


@hookspec
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Register tasks (evaluation sets, published-file readers, probes)."""


@hookspec
def register_judges(register: Callable[[JudgeSpec], None]) -> None:
    """Register judges that turn (image, sample) into yes / no / error verdicts."""


@hookspec
def register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    """Register trainers that turn a model and data into a new checkpoint folder."""


#: hook name -> record type it registers; the registry and the docs test read this.
HOOKS: dict[str, type] = {
    "register_models": ModelSpec,
    "register_tasks": TaskSpec,
    "register_judges": JudgeSpec,
    "register_trainers": TrainerSpec,
}
