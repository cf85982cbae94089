"""Evaluation sharded over two processes (torchrun, gloo on CPU) equals a one-process run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import run_cli

pytest.importorskip("torch")

ARGS = ["eval", "--model", "toy-painter", "--task", "toy-shades", "--task-arg", "n=23",
        "--judge", "toy-pixel", "--batch-size", "3", "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(folder: Path) -> list[tuple]:
    out = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    return sorted((r["task"], r["mode"], r["id"], r["verdict"], r.get("seed")) for r in out)


def test_two_gloo_processes_shard_by_sample_and_match_one_process(toy_plugin, tmp_path):
    single = run_cli(*ARGS, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "-m", "unisandbox", *ARGS, "--json", "--out", str(tmp_path / "two")]
    two = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "resuming" not in two.stderr  # a new folder is new to every rank, however late it looks
    # one process reports: one JSON document, each line of progress once
    assert json.loads(two.stdout)["run_folder"] == str(tmp_path / "two")
    assert two.stderr.count("loading model toy-painter") == 1
    one_results = json.loads((tmp_path / "one/results.json").read_text())
    two_results = json.loads((tmp_path / "two/results.json").read_text())
    assert two_results == one_results
    assert rows(tmp_path / "two") == rows(tmp_path / "one")
    for image in (tmp_path / "one/images").rglob("*.png"):
        assert (tmp_path / "two" / image.relative_to(tmp_path / "one")).read_bytes() == image.read_bytes()
    caches = sorted(p.name for p in (tmp_path / "two").glob("judge_cache*.jsonl"))
    assert caches == ["judge_cache.jsonl", "judge_cache.rank1.jsonl"]  # one file per rank


TEARDOWN = """
import atexit, os, sys
import torch.distributed as td
from unisandbox.distributed import get_dist

out = sys.argv[1] + f"/rank{os.environ['RANK']}"
# registered before the engine's handler, so it runs after it (atexit is last in, first out)
atexit.register(lambda: open(out, "w").write(str(td.is_initialized())))
dist = get_dist()
assert dist.gather([dist.rank]) == [0, 1]
"""


def test_the_process_group_is_torn_down_before_the_interpreter_exits(tmp_path):
    # a gloo group left alive at exit aborted a rank ("terminate called without an active
    # exception") after the work was done
    script = tmp_path / "teardown.py"
    script.write_text(TEARDOWN)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), str(script), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["False", "False"]
