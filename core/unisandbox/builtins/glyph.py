"""Built-in sandbox-world pieces: the exact ``glyph`` judge (registered like any plugin's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..hookspecs import hookimpl
from ..specs import JudgeSpec

PLUGIN_API_VERSION = 1


def _glyph_judge(tasks: Sequence[Any] = ()) -> Any:
    """Imported on use: numpy, PIL and the template bank stay out of CLI start-up."""
    from ..judges.glyph import glyph_judge

    return glyph_judge(tasks)


@hookimpl
def register_judges(register: Callable[[JudgeSpec], None]) -> None:
    register(JudgeSpec(
        name="glyph",
        factory=_glyph_judge,
        description="exact parser of glyph-world images (shapes, fruits, flowers, portraits); "
                    "no model needed",
    ))
