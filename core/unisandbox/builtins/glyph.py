"""Built-in sandbox-world pieces: the exact ``glyph`` judge (registered like any plugin's)."""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..specs import JudgeSpec

PLUGIN_API_VERSION = 1


@hookimpl
def register_judges(register: Callable[[JudgeSpec], None]) -> None:
    pass
