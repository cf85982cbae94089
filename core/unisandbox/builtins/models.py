"""Built-in models: registered through the ``register_models`` hook like any plugin's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hookspecs import hookimpl
from ..specs import ModelSpec

PLUGIN_API_VERSION = 1


def _oracle(world: str = "glyph", seed: int = 0, n_characters: int = 10, split: str = "test",
            size: int = 32, layout: str = "canonical") -> Any:
    from ..models.oracle import GlyphOracle

    return GlyphOracle(world=world, seed=seed, n_characters=n_characters, split=split, size=size,
                       layout=layout)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(ModelSpec(name="glyph-oracle", factory=_oracle, capabilities={"generate", "chat"},
                       description="Solves every prompt exactly and draws the glyph answer: the "
                                   "ceiling and the glyph judge's calibration (world, seed, "
                                   "n_characters, split for knowledge)"))
