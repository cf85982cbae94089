"""Pytest helpers for plugin authors' test suites (import the fixtures into a conftest.py).

    from unisandbox.testing import one_thread  # noqa: F401  (autouse: every test, one thread)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run each test with one torch thread, restored afterwards.

    Tiny models' matrices gain nothing from a second thread, and on a busy shared CPU OpenMP's
    waiting makes every small op milliseconds slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
