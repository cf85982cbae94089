"""Built-in tasks: registered through the ``register_tasks`` hook like any plugin's.

Factories import their modules lazily, so ``unisandbox --help`` stays fast. Every keyword a
factory takes is a ``--task-arg key=value`` (see docs/tasks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hookspecs import hookimpl
from ..specs import TaskSpec

PLUGIN_API_VERSION = 1


def _math(level: int) -> Callable[..., Any]:
    def factory(n: int = 100, seed: int = 0, split: str = "test", world: str = "everyday",
                counts: Any = "1-5") -> Any:
        from ..tasks.arith import MathTask

        return MathTask(level, n=n, seed=seed, split=split, world=world, counts=counts)

    return factory


def _mapping(level: int) -> Callable[..., Any]:
    def factory(n: int = 100, seed: int = 0, split: str = "test", world: str = "everyday") -> Any:
        from ..tasks.mapping import MappingTask

        return MappingTask(level, n=n, seed=seed, split=split, world=world)

    return factory


def _knowledge(direction: str) -> Callable[..., Any]:
    def factory(n: int | None = None, seed: int = 0, split: str = "test", world: str = "everyday",
                n_characters: int = 10) -> Any:
        from ..tasks.knowledge import KnowledgeTask

        return KnowledgeTask(direction, n=n, seed=seed, split=split, world=world,
                             n_characters=n_characters)

    factory.argument_notes = {"n": "every prompt the characters give"}  # type: ignore[attr-defined]
    return factory


def _file(path: str, family: str | None = None, name: str | None = None, level: int | None = None,
          world: str = "everyday") -> Any:
    from ..tasks.published import FileTask

    return FileTask(path, family=family, name=name, level=level, world=world)


MATH = {1: "one operation (+ - * /), 'rounded down' when inexact",
        2: "two operations mixing √, ^, %, *, /, +, -",
        3: "three operations, usually with parentheses"}
MAPPING = {1: "2 rules, 1 hop", 2: "4 shuffled rules, 2 hops", 3: "6 shuffled rules, 3 hops"}


@hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    for level, what in MATH.items():
        register(TaskSpec(name=f"math-{level}", factory=_math(level),
                          description=f"Math level {level}: {what}; leak-free generator "
                                      "(n, seed, split, world, counts)"))
    for level, what in MAPPING.items():
        register(TaskSpec(name=f"mapping-{level}", factory=_mapping(level),
                          description=f"Mapping level {level}: {what}; A/B pairs "
                                      "(n, seed, split, world)"))
    register(TaskSpec(name="knowledge-forward", factory=_knowledge("forward"),
                      description="Knowledge: a character's portrait, favorite fruit and flower "
                                  "(n, n_characters, seed, split, world)"))
    register(TaskSpec(name="knowledge-inverse", factory=_knowledge("inverse"),
                      description="Knowledge inverse: the portrait of the one of two characters "
                                  "who likes X (n, n_characters, seed, split, world)"))
    register(TaskSpec(name="unisandbox-file", factory=_file,
                      description="A published (or written) UniSandbox file or folder: path=, "
                                  "family= (math|mapping|knowledge), name=, level=, world="))
