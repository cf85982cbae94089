"""PLUGINS.md stays true: every hook and capability documented, its example plugin installs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from support import run_cli
from unisandbox import capabilities, hookspecs

DOC = Path(__file__).resolve().parents[1] / "PLUGINS.md"


def example_files() -> dict[str, str]:
    text = DOC.read_text()
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S))


def test_every_hookspec_is_documented():
    text = DOC.read_text()
    for hook, record in hookspecs.HOOKS.items():
        assert f"### {hook}" in text, f"PLUGINS.md lacks a section for hook {hook}"
        assert record.__name__ in text
    declared = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert declared == set(hookspecs.HOOKS), "a hookspec is missing from hookspecs.HOOKS"


def test_every_capability_is_documented():
    text = DOC.read_text()
    for cap in capabilities.KNOWN:
        assert f"`{cap}`" in text, f"PLUGINS.md does not document capability {cap}"


def test_the_example_plugin_builds_installs_and_registers(tmp_path, monkeypatch):
    files = example_files()
    assert set(files) == {"pyproject.toml", "unisandbox_wordcount.py"}
    src = tmp_path / "unisandbox-wordcount"
    src.mkdir()
    for name, body in files.items():
        (src / name).write_text(body)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    monkeypatch.setenv("PYTHONPATH", str(site))
    listed = run_cli("tasks", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["wordcount"]["distribution"] == "unisandbox-wordcount"
    assert rows["wordcount"]["version"] == "0.1.0"
    # the documented run: the sandbox model on the new task, through the engine
    ran = run_cli("eval", "--model", "query-tiny", "--task", "wordcount", "--judge", "glyph",
                  "--out", str(tmp_path / "wc"), "--quiet", "--json")
    assert ran.returncode == 0, ran.stderr
    cells = json.loads(ran.stdout)["tasks"]["wordcount"]["levels"]["all"]
    assert cells["normal"]["n"] == cells["understanding"]["n"] == 5
