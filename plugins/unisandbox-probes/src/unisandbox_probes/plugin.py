"""Entry point of unisandbox-probes: registers the probe (analysis) tasks.

Import-light on purpose (the CLI imports every plugin module at start-up): the probes, torch
and matplotlib load inside the factories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unisandbox import capabilities as caps
from unisandbox.hookspecs import hookimpl
from unisandbox.specs import TaskSpec

PLUGIN_API_VERSION = 1


def probe_lens(task: Any = None, top_k: int = 5, threshold: float = 0.05, batch_size: int = 16,
               **task_args: Any) -> Any:
    """``task``: base task name(s) (comma-separated); other arguments go to the base task(s)."""
    from unisandbox.errors import UserError

    from .lens import LensProbe

    if task is None:
        raise UserError("probe-lens: give the task to probe, e.g. --task-arg task=math-1")
    return LensProbe(task, top_k=top_k, threshold=threshold, batch_size=batch_size, **task_args)


probe_lens.argument_notes = {  # type: ignore[attr-defined]
    "task": "required: the base task(s) whose prompts are probed, e.g. math-1 or math-1,math-2"}


def probe_transfer(before: str | None = None, after: str | None = None) -> Any:
    """``before`` / ``after``: two probe-lens folders (base model, injected model)."""
    from unisandbox.errors import UserError

    from .transfer import TransferProbe

    if before is None or after is None:
        raise UserError("probe-transfer: give both folders, --task-arg before=DIR --task-arg after=DIR")
    return TransferProbe(str(before), str(after))


probe_transfer.argument_notes = {  # type: ignore[attr-defined]
    "before": "required: the probe-lens folder of the base model",
    "after": "required: the probe-lens folder of the injected model"}


@hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    register(TaskSpec(
        name="probe-lens", factory=probe_lens, analysis=True, requires={caps.QUERY_STATES},
        description="logit lens at query tokens / baseline / context: P(answer words) per layer "
                    "(task=, top_k, threshold, batch_size, + the task's args)",
    ))
    register(TaskSpec(
        name="probe-transfer", factory=probe_transfer, analysis=True,
        description="compare two probe-lens folders, before vs after knowledge injection "
                    "(before=DIR, after=DIR; no model)",
    ))
