"""Fixtures of the BAGEL plugin's tests: one tiny random checkpoint (release layout) per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from unisandbox.testing import one_thread  # noqa: F401  (autouse)

#: Fast sampler settings for CPU tests (the defaults are the reference's 50 steps).
FAST = {"dtype": "float32", "device": "cpu", "image_size": 64, "steps": 4, "think_tokens": 6,
        "answer_tokens": 6}


@pytest.fixture(scope="session")
def fast() -> dict[str, object]:
    """Model arguments for quick CPU runs."""
    return dict(FAST)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unisandbox_bagel.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("bagel") / "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint: Path) -> Iterator[object]:
    from unisandbox_bagel.plugin import bagel

    yield bagel(str(tiny_checkpoint), **FAST)
