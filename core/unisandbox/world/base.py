"""The world interface the task generators take (``--task-arg world=glyph``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..errors import UserError


@attrs.frozen
class Thing:
    """Something a prompt can ask for and an image can show.

    ``kind`` is the object ("star", "cup", "tulip"); ``colour`` is part of the name in worlds
    that draw colours (the glyph world), None elsewhere. ``plural_kind`` is the plural of
    ``kind`` ("knives" for "knife").
    """

    kind: str
    plural_kind: str
    colour: str | None = None

    def name(self, count: int = 1) -> str:
        """'red star' / 'red stars' / 'cup' / 'cups'."""
        noun = self.kind if count == 1 else self.plural_kind
        return f"{self.colour} {noun}" if self.colour else noun

    def target(self, count: int | None = None) -> dict[str, Any]:
        """The structured answer a deterministic judge checks; keys absent = not checked."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.colour:
            out["colour"] = self.colour
        if count is not None:
            out["count"] = count
        return out


#: Largest count a prompt may ask for in any world (renderers and judges count up to here).
MAX_COUNT = 20


@attrs.frozen
class World:
    """A vocabulary: objects for math and mapping, fruits and flowers and portrait attributes
    for knowledge. ``portrait`` maps attribute -> allowed values (ethnicity, hair, age, gender).
    """

    name: str
    objects: tuple[Thing, ...]
    fruits: tuple[Thing, ...]
    flowers: tuple[Thing, ...]
    portrait: Mapping[str, tuple[str, ...]]
    description: str = ""
    #: the most objects one picture of this world can show (what ``counts`` may ask for)
    max_count: int = MAX_COUNT

    def thing(self, kind: str, colour: str | None = None) -> Thing:
        for t in (*self.objects, *self.fruits, *self.flowers):
            if t.kind == kind and t.colour == colour:
                return t
        raise KeyError(f"{self.name} world has no {colour + ' ' if colour else ''}{kind}")


_WORLDS: dict[str, Callable[[], World]] = {}
#: each world built once: worlds are frozen, and generators look them up per sample (the
#: sandbox corpus did 138,000 rebuilds, 9 s, before every pretraining run)
_BUILT: dict[str, World] = {}


def register_world(name: str, factory: Callable[[], World]) -> None:
    """Make a world available by name to every task generator."""
    _WORLDS[name] = factory
    _BUILT.pop(name, None)


def get_world(name: str | World) -> World:
    if isinstance(name, World):
        return name
    from . import everyday, glyph  # noqa: F401  (they register themselves on first import)
    if name not in _BUILT:
        if name not in _WORLDS:
            raise UserError(f"unknown world {name!r}; available: {', '.join(sorted(_WORLDS))}")
        _BUILT[name] = _WORLDS[name]()
    return _BUILT[name]
