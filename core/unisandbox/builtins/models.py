"""Built-in models: registered through the ``register_models`` hook like any plugin's."""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..specs import ModelSpec

PLUGIN_API_VERSION = 1


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    pass
