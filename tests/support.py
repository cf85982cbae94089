"""Helpers the tests import (``tests`` is on pytest's pythonpath)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


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


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``unisandbox ARGS`` in a subprocess, as a user would."""
    exe = shutil.which("unisandbox", path=str(Path(sys.executable).parent)) or "unisandbox"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)
