"""Built-in tasks: registered through the ``register_tasks`` hook like any plugin's."""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..specs import TaskSpec

PLUGIN_API_VERSION = 1


@hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    pass
