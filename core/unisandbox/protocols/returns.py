"""Checks on what a plugin's method hands back to the engine.

A model, judge or trainer that returns the wrong thing (a bare PIL image where a
``Generation`` belongs, one image too few, a number for a reply) would otherwise fail deep in
the engine with an AttributeError or a zip() message that names neither the plugin nor the
method. These checks fail at the boundary, in one line that names both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import UserError


class PluginError(UserError):
    """A plugin's method returned something the engine cannot use (its author's fix)."""


def returned(owner: object, method: str, got: Any, kind: type, n: int) -> list[Any]:
    """``got`` as a list of ``n`` items of ``kind``, or a PluginError naming owner and method."""
    who, names = f"{type(owner).__name__}.{method}()", kind.__name__
    if not isinstance(got, Sequence) or isinstance(got, str | bytes):
        raise PluginError(f"{who} returned {type(got).__name__}; expected a list of {n} {names}")
    if len(got) != n:
        raise PluginError(f"{who} returned {len(got)} items for {n} inputs; expected one {names} each")
    for i, item in enumerate(got):
        if not isinstance(item, kind):
            raise PluginError(f"{who} returned a {type(item).__name__} at position {i}; expected {names}")
    return list(got)


def generations(owner: object, got: Any, n: int) -> list[Any]:
    """``Model.generate``'s list: ``Generation`` records whose ``image`` is a PIL image."""
    from PIL.Image import Image

    from ..records import Generation

    out = returned(owner, "generate", got, Generation, n)
    for i, g in enumerate(out):
        if not isinstance(g.image, Image):
            raise PluginError(f"{type(owner).__name__}.generate() returned a Generation whose image is a "
                              f"{type(g.image).__name__} at position {i}; expected a PIL image")
        if 0 in g.image.size:
            raise PluginError(f"{type(owner).__name__}.generate() returned an empty "
                              f"{g.image.size[0]}x{g.image.size[1]} image at position {i}")
        if g.image.mode not in PNG_MODES:
            raise PluginError(f"{type(owner).__name__}.generate() returned an image in mode "
                              f"{g.image.mode!r} at position {i}; run folders keep PNGs: return an "
                              "RGB image (image.convert('RGB'))")
        if g.think is not None and not isinstance(g.think, str):
            raise PluginError(f"{type(owner).__name__}.generate() returned a Generation whose think is "
                              f"a {type(g.think).__name__} at position {i}; expected the reasoning text "
                              "(str) or None")
    return out


#: PIL modes a PNG file holds (what the run folder saves every image as)
PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B"})


def task_samples(owner: object, got: Any) -> list[Any]:
    """``Task.samples()``'s items as a list of ``Sample`` records with distinct string ids:
    results, images and resumption are keyed by id, so a repeated one would be scored from
    one image as many times as it repeats."""
    from ..records import Sample

    who = f"{type(owner).__name__}.samples()"
    if not isinstance(got, Sequence) or isinstance(got, str | bytes):
        raise PluginError(f"{who} returned {type(got).__name__}; expected a list of Sample records")
    seen: set[str] = set()
    for i, sample in enumerate(got):
        if not isinstance(sample, Sample):
            raise PluginError(f"{who} returned a {type(sample).__name__} at position {i}; expected Sample")
        if not isinstance(sample.id, str) or not sample.id:
            raise PluginError(f"{who}: the sample at position {i} has the id {sample.id!r}; "
                              "ids are non-empty strings")
        if sample.id in seen:
            raise PluginError(f"{who}: the id {sample.id!r} is given twice (position {i}); ids name "
                              "each sample's image and verdict, so each must be unique within a task")
        seen.add(sample.id)
    return list(got)


def distinct_image_names(task: Any, samples: Sequence[Any]) -> None:
    """Two samples whose images would be one file (an ``image_name`` that ignores the id, or
    two ids that clean to the same safe name) would be judged on whichever was drawn last."""
    from ..paths import safe_name

    owner: dict[str, str] = {}
    for sample in samples:
        name = task.image_name(sample)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{type(task).__name__}.image_name() returned {name!r} for sample "
                              f"{sample.id!r}; expected a file name")
        file = safe_name(name)
        if file in owner:
            raise PluginError(f"task {task.name!r}: samples {owner[file]!r} and {sample.id!r} would "
                              f"share the image file {file!r}; image_name() must give each sample "
                              "its own name")
        owner[file] = sample.id


def plain_json(owner: object, method: str, value: Any) -> Any:
    """``value`` when it is JSON as it stands (dicts with text keys, lists, text, numbers, bools,
    None). Identities are compared across processes and hashed into cache keys: a set (whose
    order changes from one process to the next), a path or an object turned into text would
    refuse every resume, or miss every cached verdict."""
    def check(item: Any, where: str) -> None:
        if item is None or isinstance(item, str | bool | int | float):
            return
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise PluginError(f"{type(owner).__name__}.{method}() holds the key {key!r} at "
                                      f"{where or 'the top'}; keys are text")
                check(sub, f"{where}.{key}" if where else key)
            return
        if isinstance(item, list | tuple):
            for i, sub in enumerate(item):
                check(sub, f"{where}[{i}]")
            return
        raise PluginError(f"{type(owner).__name__}.{method}() holds a {type(item).__name__} at "
                          f"{where or 'the top'}; it must be JSON as it stands (a sorted list for a set, "
                          "str() for a path)")

    check(value, "")
    return value
