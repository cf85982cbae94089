"""``unisandbox probe`` end to end: real models (untrained query-tiny, tiny BAGEL), real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from unisandbox.cli.main import main
from unisandbox.protocols.analysis import RESULT_FILE, SECTION_HTML, SECTION_MD


def unisandbox(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("unisandbox", path=str(Path(sys.executable).parent)) or "unisandbox"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)


def check_folder(out: Path, labels: list[str], modes: list[str]) -> dict:
    result = json.loads((out / RESULT_FILE).read_text())
    assert result["modes"] == modes
    assert all(s["labels"] == labels for s in result["samples"])
    assert {c["mode"] for c in result["cells"]} == set(modes)
    for c in result["cells"]:
        for row in c["mean"]["relevant"]:
            assert len(row) == len(labels) and all(0.0 <= v <= 1.0 for v in row)
    for name in (SECTION_MD, SECTION_HTML, "config.json"):
        assert (out / name).stat().st_size > 0
    assert len(list(out.glob("heatmap_*.png"))) == len(list(out.glob("bars_*.png"))) >= 1
    return result


def test_probe_lens_on_the_untrained_sandbox_model(tmp_path):
    out = tmp_path / "lens"
    done = unisandbox("probe", "--model", "query-tiny", "--model-arg", "init=scratch",
                      "--model-arg", "threads=1", "--task", "probe-lens",
                      "--task-arg", "task=math-1", "--task-arg", "world=glyph", "--task-arg", "n=2",
                      "--mode", "normal,think", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["probe"] == "probe-lens" and len(summary["cells"]) == 2
    result = check_folder(out, ["baseline", *(f"q{i}" for i in range(8))], ["normal", "think"])
    think = [s for s in result["samples"] if s["mode"] == "think"]
    assert all(isinstance(s["think"], str) for s in think)
    assert len(result["samples"][0]["prob"]["relevant"]) == 5  # 4 layers + embeddings
    # untrained: the answer's probability sits near the uniform guess everywhere
    for c in result["cells"]:
        assert max(max(r) for r in c["mean"]["relevant"]) < 20 * c["chance"]["relevant"]
    assert [r["mode"] for r in result["rows"]] == ["normal", "think"]
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == {"name": "query-tiny", "args": {"init": "scratch", "threads": 1}}


def test_probe_lens_on_tiny_bagel_reads_the_context_position(tmp_path, capsys):
    """In-process through the CLI's ``main`` (the subprocess path is covered above)."""
    pytest.importorskip("unisandbox_bagel")
    from unisandbox_bagel.tiny import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "bagel", seed=0)
    out = tmp_path / "lens"
    fast = ["dtype=float32", "device=cpu", "image_size=64", "steps=2", "think_tokens=6",
            "answer_tokens=6"]
    code = main(["probe", "--model", "bagel", "--model-arg", f"path={checkpoint}",
                 *[a for f in fast for a in ("--model-arg", f)], "--task", "probe-lens",
                 "--task-arg", "task=math-1", "--task-arg", "n=2", "--out", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "math-1" in printed.out and "probe folder" in printed.out
    result = check_folder(out, ["context"], ["normal", "think"])
    assert result["rows"] == []  # no queries, no baseline: the context probe
    assert set(result["cells"][0]["per_layer"]) == {"context"}
    assert len(result["samples"][0]["prob"]["relevant"]) == 3  # 2 layers + embeddings


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "math-1", "--out", "X"], "'math-1' is not a probe"),
    (["--task", "probe-lens", "--task-arg", "task=math-1", "--out", "X"], "give --model"),
    (["--model", "glyph-oracle", "--task", "probe-lens", "--task-arg", "task=math-1", "--out", "X"],
     "'glyph-oracle' lacks query_states"),
    (["--model-arg", "path=x", "--task", "probe-transfer", "--out", "X"], "--model-arg given without --model"),
    (["--model", "query-tiny", "--task", "probe-lens", "--out", "X"], "give the task to probe"),
    (["--model", "query-tiny", "--task", "probe-lens", "--task-arg", "task=math-1",
      "--task-arg", "colour=red", "--out", "X"], "takes argument 'colour'"),
    (["--task", "probe-lens", "--mode", "sideways", "--out", "X"], "unknown mode"),
])
def test_user_errors_are_one_line(args, message, tmp_path, capsys):
    args = [str(tmp_path / "out") if a == "X" else a for a in args]
    assert main(["probe", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out" / RESULT_FILE).exists()


def test_a_folder_holding_another_probe_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"probe": {"name": "probe-lens", "args": {}},
                                                 "model": None, "modes": ["normal"]}))
    code = main(["probe", "--task", "probe-transfer", "--task-arg", f"before={out}",
                 "--task-arg", f"after={out}", "--out", str(out)])
    assert code == 2
    assert "holds no probe.json" in capsys.readouterr().err
    (out / RESULT_FILE).write_text(json.dumps({"probe": "probe-lens", "samples": []}))
    assert main(["probe", "--task", "probe-transfer", "--task-arg", f"before={out}",
                 "--task-arg", f"after={out}", "--out", str(out)]) == 2
    assert "holds a different probe (probe" in capsys.readouterr().err
