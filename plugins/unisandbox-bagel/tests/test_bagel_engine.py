"""BAGEL through the engine: the runner's normal, think and understanding stages with a judge
that uses the model's own ``understand``, and the CLI's model listing with and without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from unisandbox import registry as registry_module
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner

# A third-party-style plugin with one task and one judge, installed as a dist-info for the test.
TEST_PLUGIN = '''
from unisandbox.hookspecs import hookimpl
from unisandbox.protocols import Judge, Task
from unisandbox.records import Sample, Verdict
from unisandbox.specs import JudgeSpec, TaskSpec
from PIL import Image

PLUGIN_API_VERSION = 1


class CountTask(Task):
    name = "bagel-tiny-count"
    family = "math"

    def samples(self):
        return [Sample(id=str(i), prompt=f"draw {w} red stars", answer=f"{w} stars",
                       question=f"what is {w} ?", question_answer=w, level=1)
                for i, w in enumerate(["two", "three"])]


class OwnEyes(Judge):
    """Asks the model under test what it drew (the model's understanding as judge)."""

    def __init__(self, model_loader):
        self.model_loader = model_loader

    def identity(self):
        return {"kind": "own-eyes", "version": 1}

    def judge(self, items):
        model = self.model_loader()
        images = [Image.open(item.image_path).convert("RGB") for item in items]
        replies = model.understand(images, ["how many stars ?"] * len(items))
        return [Verdict("yes" if item.sample.answer.split()[0] in reply else "no", raw=reply)
                for item, reply in zip(items, replies)]


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="bagel-tiny-count", factory=CountTask, description="count stars"))


@hookimpl
def register_judges(register):
    register(JudgeSpec(name="bagel-own-eyes", factory=OwnEyes, requires={"understand"},
                       description="the model's own understanding"))
'''


@pytest.fixture
def test_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "bagel_test_plugin.py").write_text(TEST_PLUGIN)
    info = site / "bagel_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bagel-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[unisandbox]\nbagel_test = bagel_test_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("UNISANDBOX_PLUGINS", raising=False)
    yield registry_module.get_registry(reload=True)
    registry_module._REGISTRY = None
    sys.modules.pop("bagel_test_plugin", None)


def test_runner_normal_think_and_understanding(test_plugin, tiny_checkpoint: Path, fast,
                                               tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = RunConfig(model=Component("bagel", {"path": str(tiny_checkpoint), **fast}),
                       tasks=(Component("bagel-tiny-count"),), judge=Component("bagel-own-eyes"),
                       out=out, modes=("normal", "think"), understanding=True, batch_size=2)
    runner = Runner(config, registry=test_plugin, progress=False)
    results = runner.run()
    cells = results["tasks"]["bagel-tiny-count"]["levels"]["all"]
    assert {"normal", "think", "understanding"} <= set(cells)
    assert cells["normal"]["n"] == 2 and cells["think"]["n"] == 2 and cells["understanding"]["n"] == 2
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted((r["mode"], r["id"]) for r in records) == [
        ("normal", "0"), ("normal", "1"), ("think", "0"), ("think", "1"),
        ("understanding", "0"), ("understanding", "1")]
    model = runner.model
    for r in records:
        if r["mode"] == "understanding":
            assert isinstance(r["reply"], str)
            continue
        image = Image.open(out / r["image"])
        assert image.size == (64, 64)
        assert (r["think"] is None) == (r["mode"] == "normal")
        # the verdict's raw text is the model's own answer about that very image
        assert r["judge_raw"] == model.understand([image.convert("RGB")], ["how many stars ?"])[0]
    conf = json.loads((out / "config.json").read_text())
    assert conf["specs"]["model:bagel"].startswith("unisandbox-bagel ")
    # resuming finds everything done and gives the same results
    assert Runner(config, registry=test_plugin, progress=False, model=model).run() == results


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("unisandbox", path=str(Path(sys.executable).parent)) or "unisandbox"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_models_list_shows_bagel_only_when_installed() -> None:
    listed = _cli("models", "list", "--json", env={})
    assert listed.returncode == 0, listed.stderr
    bagel = next(m for m in json.loads(listed.stdout) if m["name"] == "bagel")
    assert bagel["distribution"] == "unisandbox-bagel"
    assert set(bagel["capabilities"]) == {"generate", "understand", "chat", "query_states",
                                          "train:understanding", "train:generation"}
    builtins_only = _cli("models", "list", env={"UNISANDBOX_PLUGINS": ""})
    assert builtins_only.returncode == 0 and "bagel" not in builtins_only.stdout + builtins_only.stderr


def test_the_plugin_module_imports_no_torch() -> None:
    code = "import sys, unisandbox_bagel.plugin; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
