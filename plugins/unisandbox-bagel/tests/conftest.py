"""Fixtures of the BAGEL plugin's tests: one tiny random checkpoint (release layout) per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

#: Fast sampler settings for CPU tests (the defaults are the reference's 50 steps).
FAST = {"dtype": "float32", "device": "cpu", "image_size": 64, "steps": 4, "think_tokens": 6,
        "answer_tokens": 6}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The tiny model's matrices are far too small for threads to help; on a busy shared CPU
    OpenMP's waiting makes each small op milliseconds slower. Restored after every test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
