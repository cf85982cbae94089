"""Pytest helpers for plugin authors' test suites (import the fixtures into a conftest.py).

    from unisandbox.testing import one_thread  # noqa: F401  (autouse: every test, one thread)

``write_dist`` installs a plugin for a test without pip: what an installer leaves on sys.path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def write_dist(site: Path, dist: str, version: str, modules: dict[str, str],
               entry_points: dict[str, str]) -> Path:
    """Write modules plus a ``<dist>-<version>.dist-info`` with entry points into ``site``.

    Exactly what an installer leaves behind, minus RECORD: importlib.metadata discovers it
    on sys.path like any installed distribution.
    """
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[unisandbox]\n{lines}\n")
    return site
