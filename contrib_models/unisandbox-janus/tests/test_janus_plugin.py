"""The janus plugin on a tiny random JanusForConditionalGeneration saved and loaded through
transformers' own save_pretrained / from_pretrained: the engine's runner (normal, think, U by
chat, the self judge by understand), per-sample seeds, the think protocol, loading rules and
the CLI listing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from unisandbox.errors import UserError
from unisandbox.factories import build
from unisandbox.judges.selfjudge import filter_prompt
from unisandbox.records import GenerationRequest
from unisandbox.registry import get_registry
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner
from unisandbox.run.seeds import sample_seed
from unisandbox.testing import one_thread  # noqa: F401  (autouse)

CPU = {"device": "cpu", "think_tokens": 12, "answer_tokens": 8}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unisandbox_janus.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("janus") / "tiny", seed=0)


@pytest.fixture(scope="module")
def model(checkpoint: Path):
    spec = get_registry(reload=True).model("janus")
    return build(spec, {"path": str(checkpoint), **CPU})


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_checkpoint_is_transformers_layout(checkpoint: Path) -> None:
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "processor_config.json", "chat_template.jinja"} <= names
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "janus" and config["architectures"] == ["JanusForConditionalGeneration"]
    assert not any(p.suffix in (".bin", ".pt", ".py") for p in checkpoint.iterdir())


def test_runner_normal_think_and_understanding(model, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = RunConfig(model=Component("janus", {"path": str(checkpoint), **CPU}),
                       tasks=(Component("math-1", {"n": 3, "world": "glyph"}),),
                       judge=Component("glyph"), out=out, modes=("normal", "think"), batch_size=2)
    results = Runner(config, progress=False, log=lambda _: None).run()
    cells = results["tasks"]["math-1"]["levels"]["all"]
    assert cells["normal"]["n"] == cells["think"]["n"] == cells["understanding"]["n"] == 3
    rows = records(out)
    assert sorted((r["mode"], r["id"]) for r in rows) == sorted(
        (m, i) for m in ("normal", "think", "understanding") for i in ("1", "2", "3"))
    for r in rows:
        if r["mode"] == "understanding":
            assert isinstance(r["reply"], str) and r["verdict"] in ("yes", "no")
            assert r["reply"] == model.chat([r["question"]])[0]  # U is the model's own greedy chat
            continue
        assert r["image"] == f"images/math-1/{r['mode']}/{r['id']}.png"
        assert r["seed"] == sample_seed(0, "math-1", r["id"], r["mode"])
        assert r["verdict"] in ("yes", "no") and r["judge_raw"]  # the glyph parser's report
        image = Image.open(out / r["image"])
        assert image.size == (32, 32) and image.mode == "RGB"
        if r["mode"] == "think":
            assert isinstance(r["think"], str) and r["think"] == model.plan([r["prompt"]])[0]
        else:
            assert r["think"] is None
        # the saved image is what the model draws for this prompt, mode and seed, alone
        again = model.generate([GenerationRequest(r["prompt"], r["mode"], r["seed"])])[0].image
        assert np.array_equal(pixels(again), pixels(image))
    conf = json.loads((out / "config.json").read_text())
    assert conf["specs"]["model:janus"].startswith("unisandbox-janus ")
    # a second run over the same folder finds everything done and returns the same results
    assert Runner(config, progress=False, log=lambda _: None, model=model).run() == results


def test_the_self_judge_reads_images_through_understand(model, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "self"
    config = RunConfig(model=Component("janus", {"path": str(checkpoint), **CPU}),
                       tasks=(Component("math-1", {"n": 3, "world": "glyph"}),),
                       judge=Component("self"), out=out, modes=("normal",), understanding=False)
    Runner(config, progress=False, log=lambda _: None, model=model).run()
    for r in records(out):
        image = Image.open(out / r["image"]).convert("RGB")
        reply = model.understand([image], [filter_prompt(r["prompt"])])[0]
        assert r["judge_raw"].startswith(reply)  # random weights never say "Final Answer"
        assert r["verdict"] in ("yes", "no", "error")


def test_seed_decides_the_image_whatever_the_batch(model) -> None:
    prompt = "Draw 3 red stars."
    alone = model.generate([GenerationRequest(prompt, "normal", 11)])[0].image
    batch = model.generate([GenerationRequest("A much longer prompt about two blue circles.", "normal", 5),
                            GenerationRequest(prompt, "normal", 11),
                            GenerationRequest(prompt, "normal", 12)])
    assert np.array_equal(pixels(alone), pixels(batch[1].image))  # same seed, other neighbours
    assert not np.array_equal(pixels(batch[1].image), pixels(batch[2].image))  # other seed


def test_think_draws_for_prompt_plus_plan(model) -> None:
    prompt = "Draw as many stars as 2 + 1."
    think = model.generate([GenerationRequest(prompt, "think", 7)])[0]
    assert think.think == model.plan([prompt])[0]
    same = model.generate([GenerationRequest(f"{prompt}\n{think.think}", "normal", 7)])[0]
    plain = model.generate([GenerationRequest(prompt, "normal", 7)])[0]
    assert np.array_equal(pixels(think.image), pixels(same.image))
    assert not np.array_equal(pixels(think.image), pixels(plain.image))


def test_understand_sees_the_image_and_batches_like_singles(model) -> None:
    import torch

    red, blue = Image.new("RGB", (32, 32), "red"), Image.new("RGB", (48, 20), "blue")
    questions = ["What colour is it?", "How many shapes are there in this picture?"]
    batched = model.understand([red, blue], questions)
    assert batched == [model.understand([red], questions[:1])[0], model.understand([blue], questions[1:])[0]]
    # the image reaches the language model: the next-token logits differ between images
    turn = model._turn(questions[0], image=True)
    logits = []
    for image in (red, blue):
        inputs = model.processor(text=[turn], images=[image], return_tensors="pt")
        with torch.inference_mode():
            logits.append(model.net(**inputs).logits[0, -1])
    assert not torch.allclose(logits[0], logits[1])


def test_greedy_images_ignore_the_seed(checkpoint: Path) -> None:
    spec = get_registry().model("janus")
    greedy = build(spec, {"path": str(checkpoint), "temperature": 0, "cfg": 1, **CPU})
    a, b = greedy.generate([GenerationRequest("Draw a cat.", "normal", 1),
                            GenerationRequest("Draw a cat.", "normal", 2)])
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert greedy.identity()["temperature"] == 0.0


def test_loading_rules(checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import JanusForConditionalGeneration, JanusProcessor

    spec = get_registry().model("janus")
    with pytest.raises(UserError, match=r"no config\.json"):
        build(spec, {"path": str(tmp_path / "missing")})
    with pytest.raises(UserError, match="dtype"):
        build(spec, {"path": str(checkpoint), "dtype": "int8", "device": "cpu"})
    with pytest.raises(UserError, match="cfg must be a number >= 1"):
        build(spec, {"path": str(checkpoint), "cfg": 0.5, "device": "cpu"})
    with pytest.raises(UserError, match="cfg must be a number >= 1, got 'abc'"):
        build(spec, {"path": str(checkpoint), "cfg": "abc", "device": "cpu"})
    with pytest.raises(UserError, match=r"think_tokens must be a whole number >= 1, got 2\.7"):
        build(spec, {"path": str(checkpoint), "think_tokens": 2.7, "device": "cpu"})
    with pytest.raises(UserError, match="device must be cpu, cuda or cuda:N, got 'bogus'"):
        build(spec, {"path": str(checkpoint), "device": "bogus"})
    # a damaged or foreign folder is one line naming it, and only safetensors are read
    for damage in ("delete", "truncate", "config-list", "config-type"):
        broken = tmp_path / damage
        shutil.copytree(checkpoint, broken)
        weights = next(broken.glob("*.safetensors"))
        config = json.loads((broken / "config.json").read_text())
        if damage == "delete":
            weights.unlink()
            (broken / "pytorch_model.bin").write_bytes(b"not loaded")
        elif damage == "truncate":
            weights.write_bytes(weights.read_bytes()[:4000])
        elif damage == "config-list":
            (broken / "config.json").write_text("[]")
        else:
            (broken / "config.json").write_text(json.dumps({**config, "text_config": 5}))
        with pytest.raises(UserError, match=f"janus.*{broken}"):
            build(spec, {"path": str(broken), "device": "cpu"})
    with pytest.raises(UserError, match="trust_remote_code"):
        build(spec, {"path": str(checkpoint), "trust_remote_code": "maybe"})
    with pytest.raises(UserError, match="unknown argument"):
        build(spec, {"path": str(checkpoint), "steps": 3})
    # every load is local-only and never runs checkpoint code unless asked
    seen: list[dict] = []
    for cls in (JanusForConditionalGeneration, JanusProcessor):
        real = cls.from_pretrained.__func__

        def spy(klass, path, *args, _real=real, **kwargs):
            seen.append(kwargs)
            return _real(klass, path, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    build(spec, {"path": str(checkpoint), "device": "cpu"})
    build(spec, {"path": str(checkpoint), "device": "cpu", "trust_remote_code": "true"})
    assert [(k["local_files_only"], k["trust_remote_code"]) for k in seen] == [
        (True, False), (True, False), (True, True), (True, True)]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("unisandbox", path=str(Path(sys.executable).parent)) or "unisandbox"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_models_list_shows_janus_from_its_distribution() -> None:
    listed = _cli("models", "list", "--json", env={})
    assert listed.returncode == 0, listed.stderr
    janus = next(m for m in json.loads(listed.stdout) if m["name"] == "janus")
    assert janus["distribution"] == "unisandbox-janus"
    assert set(janus["capabilities"]) == {"generate", "understand", "chat"}
    builtins_only = _cli("models", "list", env={"UNISANDBOX_PLUGINS": ""})
    assert builtins_only.returncode == 0 and "janus" not in builtins_only.stdout


def test_the_plugin_module_imports_no_torch() -> None:
    code = "import sys, unisandbox_janus.plugin; print('torch' in sys.modules, 'transformers' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False False", done.stderr
