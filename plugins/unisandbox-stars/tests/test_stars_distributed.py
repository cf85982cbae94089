"""Data-parallel training under torchrun: 2 gloo processes on CPU equal one process.

The 2-process runs go through the real launcher and the real CLI (``torchrun -m
unisandbox.cli.main train ...``); the 1-process reference runs in this process with the same
arguments. ``micro_batch`` is fixed so both split each global batch into the same pieces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from unisandbox.training import run_trainer


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "unisandbox.cli.main", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def assert_close(a: Path, b: Path, atol: float = 1e-5) -> float:
    left, right = load_file(str(a)), load_file(str(b))
    assert left.keys() == right.keys()
    worst = max(float((left[k].float() - right[k].float()).abs().max()) for k in left)
    assert worst <= atol, worst
    return worst


def one_and_two_processes(trainer: str, checkpoint: Path, train_args: dict, tmp_path: Path) -> Path:
    """Train in this process into tmp_path/one and under torchrun into tmp_path/two; assert the
    saved parameters agree; return the one-process checkpoint."""
    single = run_trainer(trainer, model_name="query", model_args={"path": str(checkpoint)},
                         train_args=train_args, out=tmp_path / "one")
    cli = [f"--train-arg={k}={json.dumps(v) if not isinstance(v, str) else v}"
           for k, v in train_args.items()]
    done = torchrun(["train", trainer, "--model", "query", "--model-arg", f"path={checkpoint}",
                     *cli, "--out", str(tmp_path / "two"), "--json"], tmp_path)
    report = json.loads(done.stdout)  # one document: only rank 0 prints the result
    assert report["checkpoint"] == str(tmp_path / "two" / "model") and report["metrics"]
    assert_close(single.checkpoint / "model.safetensors", tmp_path / "two" / "model" / "model.safetensors")
    return single.checkpoint


def test_two_process_inject_equals_one_process(tiny_checkpoint: Path, corpus_file: Path,
                                               tmp_path: Path) -> None:
    train_args = {"data": str(corpus_file), "steps": 4, "batch_size": 8, "micro_batch": 2,
                  "lr": 3e-3, "progress": False}
    single = one_and_two_processes("inject", tiny_checkpoint, train_args, tmp_path)
    metrics = json.loads((tmp_path / "two" / "done.json").read_text())["metrics"]
    assert metrics["world_size"] == 2 and metrics["micro_batch"] == 2
    # the understanding side moved, and equally far in both runs
    base = load_file(str(tiny_checkpoint / "model.safetensors"))
    trained = load_file(str(single / "model.safetensors"))
    assert not torch.equal(base["lm.model.embed_tokens.weight"], trained["lm.model.embed_tokens.weight"])
    assert torch.equal(base["queries"], trained["queries"])


@pytest.mark.slow
def test_two_process_stars_equals_one_process(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Stage I dealt out to both ranks, rank 0 judges, stage III data-parallel."""
    train_args = {"tasks": "math-1", "n": 3, "k": 2, "no_filter": True, "gen_batch": 2,
                  "steps": 3, "batch_size": 4, "micro_batch": 2, "progress": False}
    one_and_two_processes("stars", tiny_checkpoint, train_args, tmp_path)
    one = (tmp_path / "one" / "round1-level1" / "candidates.jsonl").read_text().splitlines()
    two = (tmp_path / "two" / "round1-level1" / "candidates.jsonl").read_text().splitlines()
    assert len(one) == len(two) == 6
