"""Checkpoint completion: a partial fine-tuned checkpoint filled from its base, cast to bf16."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from unisandbox.errors import UserError
from unisandbox_bagel import checkpoint
from unisandbox_bagel.completion import REPORT, complete_checkpoint


def partial_from(base: Path, folder: Path, keep: str) -> dict[str, torch.Tensor]:
    """A 'trained' partial checkpoint: only tensors whose name contains ``keep``, float32, changed."""
    folder.mkdir(parents=True)
    state = {k: (v.float() + 1.0) for k, v in load_file(str(base / "ema.safetensors")).items() if keep in k}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "train_state.json").write_text("{}")
    return state


def test_completion_fills_casts_copies_and_reports(tiny_checkpoint: Path, tmp_path: Path) -> None:
    base_state = load_file(str(tiny_checkpoint / "ema.safetensors"))
    trained = partial_from(tiny_checkpoint, tmp_path / "partial", keep="moe_gen")
    assert 0 < len(trained) < len(base_state)
    report = complete_checkpoint(tiny_checkpoint, tmp_path / "partial", tmp_path / "full")
    out = load_file(str(tmp_path / "full" / "model.safetensors"))
    assert out.keys() == base_state.keys()
    assert all(t.dtype == torch.bfloat16 for t in out.values())
    for name, tensor in out.items():
        source = trained.get(name, base_state[name])
        assert torch.equal(tensor, source.to(torch.bfloat16)), name
    assert report.kept == len(trained) and report.cast_to_bf16 == len(out)
    assert {f["name"] for f in report.filled} == set(base_state) - set(trained)
    assert "ae.safetensors" in report.copied_files and "llm_config.json" in report.copied_files
    assert "ema.safetensors" not in report.copied_files and not (tmp_path / "full" / "ema.safetensors").exists()
    saved = json.loads((tmp_path / "full" / REPORT).read_text())
    assert len(saved["filled"]) == len(report.filled)
    loaded = checkpoint.load(tmp_path / "full", dtype="bfloat16", device="cpu")
    assert loaded.weights.name == "model.safetensors"
    assert torch.equal(loaded.net.llm2vae.weight, base_state["llm2vae.weight"].to(torch.bfloat16))
    assert torch.equal(loaded.net.language_model.model.norm_moe_gen.weight,
                       trained["language_model.model.norm_moe_gen.weight"].to(torch.bfloat16))


def test_completion_in_place_never_overwrites_other_files(tiny_checkpoint: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial_from(tiny_checkpoint, partial, keep="lm_head")
    (partial / "config.json").write_text('{"note": "mine"}')
    complete_checkpoint(tiny_checkpoint, partial)
    assert json.loads((partial / "config.json").read_text()) == {"note": "mine"}
    assert (partial / "train_state.json").exists()
    assert len(load_file(str(partial / "model.safetensors"))) == len(load_file(str(tiny_checkpoint / "ema.safetensors")))


def test_completion_refuses_a_different_architecture(tiny_checkpoint: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    save_file({"llm2vae.bias": torch.zeros(7)}, str(partial / "model.safetensors"))
    with pytest.raises(UserError, match=r"llm2vae\.bias has shape \[7\]"):
        complete_checkpoint(tiny_checkpoint, partial, tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()
    with pytest.raises(UserError, match=r"no model\.safetensors or ema\.safetensors"):
        complete_checkpoint(tiny_checkpoint, tmp_path / "empty")
    # an autoencoder given as the partial weights: nothing in common with the base
    shutil.copy(tiny_checkpoint / "ae.safetensors", partial / "model.safetensors")
    with pytest.raises(UserError, match="shares no tensor with"):
        complete_checkpoint(tiny_checkpoint, partial, tmp_path / "out")
    save_file({"llm2vae.bias": load_file(str(tiny_checkpoint / "ema.safetensors"))["llm2vae.bias"],
               "brand_new.weight": torch.zeros(2)}, str(partial / "model.safetensors"))
    with pytest.raises(UserError, match=r"1 tensor\(s\) are not in the base, e.g. brand_new.weight"):
        complete_checkpoint(tiny_checkpoint, partial, tmp_path / "out")


def test_completion_into_a_folder_that_holds_one_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    partial_from(tiny_checkpoint, tmp_path / "partial", keep="lm_head")
    complete_checkpoint(tiny_checkpoint, tmp_path / "partial", tmp_path / "full")
    before = (tmp_path / "full" / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match=r"holds completion_report\.json already"):
        complete_checkpoint(tiny_checkpoint, tmp_path / "partial", tmp_path / "full")
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == before
    base = tmp_path / "base"
    shutil.copytree(tiny_checkpoint, base)
    with pytest.raises(UserError, match="is the base checkpoint"):  # its weights would change
        complete_checkpoint(base, tmp_path / "partial", base)
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, other)  # someone's checkpoint: ema.safetensors there
    with pytest.raises(UserError, match=r"holds ema\.safetensors already"):
        complete_checkpoint(tiny_checkpoint, tmp_path / "partial", other)
    empty = tmp_path / "empty-partial"
    empty.mkdir()
    save_file({}, str(empty / "model.safetensors"))
    with pytest.raises(UserError, match="holds no tensors"):
        complete_checkpoint(tiny_checkpoint, empty, tmp_path / "out3")


def test_completion_command_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial_from(tiny_checkpoint, partial, keep="vit_model")
    exe = shutil.which("unisandbox-bagel", path=str(Path(sys.executable).parent)) or "unisandbox-bagel"
    done = subprocess.run([exe, "complete-checkpoint", "--base", str(tiny_checkpoint), "--partial",
                           str(partial), "--out", str(tmp_path / "full")],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "filled" in done.stdout and "cast" in done.stdout
    assert (tmp_path / "full" / "model.safetensors").is_file()
    bad = subprocess.run([exe, "complete-checkpoint", "--base", str(tmp_path / "nowhere"), "--partial",
                          str(partial)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_make_tiny_command_writes_a_loadable_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unisandbox_bagel.cli import main

    assert main(["make-tiny", str(tmp_path / "tiny")]) == 0
    loaded = checkpoint.load(tmp_path / "tiny", dtype="float32", device="cpu")
    assert loaded.weights.name == "ema.safetensors" and loaded.tokens.bos != loaded.tokens.eos
    assert main(["make-tiny", str(tmp_path / "tiny")]) == 2
    assert "not empty" in capsys.readouterr().err
