"""Calling a registered factory with user-supplied arguments, with errors a user can act on."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import UserError
from .protocols.analysis import AnalysisTask
from .protocols.judge import Judge
from .protocols.model import Model
from .protocols.returns import PluginError, distinct_image_names, plain_json, task_samples
from .protocols.task import Task
from .protocols.trainer import Trainer
from .specs import Spec


def _parameters(spec: Spec) -> list[inspect.Parameter] | None:
    """The factory's parameters, or None when its signature cannot be read."""
    try:
        return list(inspect.signature(spec.factory).parameters.values())
    except (TypeError, ValueError):
        return None


def accepted_arguments(spec: Spec) -> list[str] | None:
    """Keyword names the factory takes, or None when it takes ``**kwargs``."""
    params = _parameters(spec)
    if params is None or any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def argument_defaults(spec: Spec) -> list[tuple[str, Any]]:
    """(name, default) of each keyword argument the factory takes, ``inspect.Parameter.empty``
    for a required one (what ``unisandbox train NAME --help`` lists)."""
    return [(p.name, p.default) for p in _parameters(spec) or []
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


#: judge factory parameters the engine fills (judges that borrow the model under test, judges
#: that read the run's tasks): never a user's argument, never listed as one (a trainer's
#: ``tasks``, STARS's, is the user's)
JUDGE_CONTEXT = frozenset({"model_loader", "tasks"})

#: the CLI option that passes arguments to each kind of factory (for error messages)
ARG_FLAGS = {"model": "--model-arg", "task": "--task-arg", "judge": "--judge-arg", "trainer": "--train-arg"}


def check_number(name: str, value: Any, *, whole: bool, low: float) -> None:
    """A numeric factory argument (None: not given) checked when the component is built, not
    at the first batch it meets: ``--x-arg steps=abc`` arrives as a string."""
    if value is None:
        return
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not is_finite(value) or value < low:
        kind = "a whole number" if whole else "a number"
        raise UserError(f"{name} must be {kind} >= {low:g}, got {value!r}")


def is_finite(value: int | float) -> bool:
    """Not nan or ±inf (``math.isfinite`` overflows on a huge int, which is finite)."""
    return not isinstance(value, float) or math.isfinite(value)


def check_device(device: Any) -> str:
    """A model's ``device`` argument: cpu, cuda or cuda:N, with CUDA present when asked for
    (torch is imported here, by the model plugins that call this)."""
    import torch

    try:
        kind = torch.device(device).type if isinstance(device, str) else None  # not 0 for cuda:0
    except (RuntimeError, TypeError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise UserError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r}: no CUDA device is available to this torch ({torch.__version__})")
    return device


def required_arguments(spec: Spec) -> list[str]:
    """Keyword names the factory needs and has no default for."""
    return [name for name, default in argument_defaults(spec) if default is inspect.Parameter.empty]


def build(spec: Spec, args: Mapping[str, Any], **context: Any) -> Any:
    """``spec.factory(**args, **context)``; unknown, missing or bad arguments become a UserError
    that names the argument and the CLI option that gives it, not the Python function.

    ``context`` carries engine-provided objects (``model_loader`` for judges that borrow the
    model under test, ``tasks`` for judges that read the run's tasks; ``JUDGE_CONTEXT``); it is
    passed only to factories that accept it, and a user cannot give it.
    """
    accepted = accepted_arguments(spec)
    flag = ARG_FLAGS.get(spec.kind, "--arg")
    engine = JUDGE_CONTEXT if spec.kind == "judge" else frozenset()
    given = sorted(set(args) & engine)
    if given:
        raise UserError(f"{spec.kind} {spec.name!r}: {given[0]} is given by the engine, not by {flag}")
    if accepted is not None:
        unknown = sorted(set(args) - set(accepted))
        if unknown:
            shown = ", ".join(a for a in accepted if a not in engine and a not in context) or "none"
            raise UserError(f"{spec.kind} {spec.name!r}: unknown argument {unknown[0]!r}; accepted: {shown}")
        context = {k: v for k, v in context.items() if k in accepted}
    missing = [a for a in required_arguments(spec)
               if a not in args and a not in context and a not in engine]
    if missing:
        raise UserError(f"{spec.kind} {spec.name!r} needs {flag} {missing[0]}=...")
    who = f"{spec.kind} {spec.name!r}"
    try:
        built = spec.factory(**args, **context)
    except UserError as exc:
        named = str(exc).startswith((who, f"{spec.name}:", f"{spec.name} "))
        if type(exc) is UserError and not named:  # "steps must be ...": whose?
            raise UserError(f"{who}: {exc}") from exc
        raise
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"{who}: {exc}") from exc
    except TypeError as exc:
        if "argument" in str(exc) and exc.__traceback__ is not None \
                and exc.__traceback__.tb_next is None:  # the call itself (a signature unread)
            raise UserError(f"{who}: {exc}") from exc
        if hasattr(exc, "add_note"):  # the factory's own code met a value it did not check
            exc.add_note(f"unisandbox: raised while building {who} ({spec.distribution} {spec.version})")
        raise
    except ImportError as exc:  # an optional dependency of the plugin is not installed
        raise UserError(f"{who} ({spec.distribution} {spec.version}) needs a package that is not "
                        f"installed: {exc}") from exc
    except Exception as exc:  # the plugin's bug: the traceback is for its author, this says whose
        if hasattr(exc, "add_note"):
            exc.add_note(f"unisandbox: raised while building {who} ({spec.distribution} {spec.version})")
        raise
    expected = {"model": Model, "task": Task, "judge": Judge, "trainer": Trainer}.get(spec.kind)
    if expected is not None and not isinstance(built, expected):
        raise PluginError(f"{who} ({spec.distribution} {spec.version}): the factory returned a "
                          f"{type(built).__name__}; expected a unisandbox.protocols.{expected.__name__}")
    if isinstance(built, Model) and not built.capabilities:
        # a model class that leaves ``capabilities`` empty has the ones its spec declares, so
        # what `models list` shows and what the engine checks on the object agree
        built.capabilities = frozenset(getattr(spec, "capabilities", ()))
    if isinstance(built, Model):
        built.check_implemented()
    if isinstance(built, Task):
        if built.name == Task.name:  # a class that names no task is the task it was registered as
            built.name = spec.name
        if isinstance(built, AnalysisTask) and not getattr(spec, "analysis", False):
            raise PluginError(f"{who} ({spec.distribution} {spec.version}): the factory returned a "
                              "probe (an AnalysisTask) but the task is registered without "
                              "analysis=True, so eval would run it as an empty task")
        if not isinstance(built, AnalysisTask):  # a probe may pool several tasks' items
            distinct_image_names(built, task_samples(built, built.samples()))
    if isinstance(built, Model | Judge | Task):  # recorded in run folders, hashed into cache keys
        plain_json(built, "identity", built.identity())
    return built


def judge_task_context(spec: Spec, tasks: Sequence[Any]) -> dict[str, Any]:
    """``{"tasks": ...}`` for judge factories that name a ``tasks`` argument, else nothing.

    VLM judges read the run's tasks for their ``judge_templates`` (see docs/judges.md); only
    factories that ask for them get them, so ``**kwargs`` factories are not surprised.
    """
    return {"tasks": tuple(tasks)} if "tasks" in (accepted_arguments(spec) or ()) else {}
