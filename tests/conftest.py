"""Shared fixtures: installing small plugin distributions (dist-info on a path) for tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import FIXTURES
from unisandbox import registry as registry_module
from unisandbox.testing import write_dist


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Install dists into a temp site dir on sys.path (and PYTHONPATH for subprocesses)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("UNISANDBOX_PLUGINS", raising=False)

    def install(dist: str, version: str = "1.0", modules: dict[str, str] | None = None,
                entry_points: dict[str, str] | None = None) -> Path:
        write_dist(site, dist, version, modules or {}, entry_points or {})
        for name in modules or {}:
            sys.modules.pop(name, None)
        registry_module.get_registry(reload=True)
        return site

    yield install
    registry_module._REGISTRY = None
    for path in site.glob("*.py"):
        sys.modules.pop(path.stem, None)


@pytest.fixture
def toy_plugin(plugin_site: Callable[..., Path]) -> Path:
    """The toy plugin (tests/fixtures/toy_unisandbox.py) installed as dist ``toy-unisandbox``."""
    source = (FIXTURES / "toy_unisandbox.py").read_text()
    return plugin_site("toy-unisandbox", "0.3", {"toy_unisandbox": source},
                       {"toy": "toy_unisandbox"})
