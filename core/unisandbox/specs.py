"""What a plugin registers: one frozen record per model, task, judge or trainer.

Plugins fill ``name``, ``factory``, ``description`` and the capability sets; the registry
fills ``distribution`` and ``version`` from the package that provided the record, so users
always see where a name came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from .capabilities import check_capabilities

#: a record's name: it appears in CLI options, folder names and config files
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _names(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    return frozenset(value or ())


@attrs.frozen(kw_only=True)
class _Spec:
    name: str
    factory: Callable[..., Any] = attrs.field(repr=False)
    description: str
    distribution: str = ""
    version: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"name {self.name!r} must be ASCII letters, digits, '-' or '_', starting "
                             "with a letter or digit")
        if not callable(self.factory):
            raise ValueError(f"{self.name}: factory must be callable, got {type(self.factory).__name__}")
        if "\n" in self.description:
            raise ValueError(f"{self.name}: description must be one line")

    @property
    def kind(self) -> str:
        return type(self).__name__.removesuffix("Spec").lower()


@attrs.frozen(kw_only=True)
class ModelSpec(_Spec):
    """A unified model. ``capabilities`` lists what it can do (see ``capabilities.py``)."""

    capabilities: frozenset[str] = attrs.field(converter=_names, validator=check_capabilities)


@attrs.frozen(kw_only=True)
class TaskSpec(_Spec):
    """A task: a set of samples plus how to score them.

    ``requires`` names the model capabilities the task needs beyond ``generate`` (probe tasks
    need ``query_states``); ``analysis`` marks probes, which the runner does not generate for.
    """

    requires: frozenset[str] = attrs.field(factory=frozenset, converter=_names, validator=check_capabilities)
    analysis: bool = False


@attrs.frozen(kw_only=True)
class JudgeSpec(_Spec):
    """A judge. ``requires`` names model capabilities it borrows (``self`` needs ``understand``)."""

    requires: frozenset[str] = attrs.field(factory=frozenset, converter=_names, validator=check_capabilities)


@attrs.frozen(kw_only=True)
class TrainerSpec(_Spec):
    """A trainer: a model and data in, a new checkpoint folder out."""

    requires: frozenset[str] = attrs.field(factory=frozenset, converter=_names, validator=check_capabilities)


Spec = ModelSpec | TaskSpec | JudgeSpec | TrainerSpec


def origins(specs: Iterable[Spec | None]) -> dict[str, str]:
    """``{"kind:name": "distribution version"}`` for a run's config: where each component came
    from (the report shows it beside the name)."""
    return {f"{s.kind}:{s.name}": f"{s.distribution} {s.version}" for s in specs if s is not None}
