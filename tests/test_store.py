"""The run store's guarantees: atomic files, a log that survives torn writes, safe names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unisandbox.errors import UserError
from unisandbox.paths import inside, safe_name
from unisandbox.records import Sample
from unisandbox.run.aggregate import summarise, unit_verdicts, wilson_interval
from unisandbox.run.store import JsonlLog, atomic_write_json


def test_log_repair_cuts_only_the_torn_tail(tmp_path):
    log = JsonlLog(tmp_path / "s.jsonl")
    log.append([{"a": 1}, {"a": 2}])
    with open(log.path, "ab") as handle:
        handle.write(b'{"a": 3, "b"')
    assert [r["a"] for r in log.read()] == [1, 2]
    log.repair()
    log.append([{"a": 4}])
    assert [r["a"] for r in log.read()] == [1, 2, 4]
    with open(log.path, "ab") as handle:  # a final line torn inside a character, newline and all
        handle.write(b'{"id": "x\xff"}\n')
    log.repair()
    assert [r["a"] for r in log.read()] == [1, 2, 4]


def test_log_corruption_in_the_middle_is_reported(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(UserError, match=r"s\.jsonl:2: corrupt record"):
        list(JsonlLog(path).read())


def test_atomic_write_leaves_no_temp_files_and_plain_permissions(tmp_path):
    import os

    atomic_write_json(tmp_path / "x" / "r.json", {"k": 1})
    assert json.loads((tmp_path / "x/r.json").read_text()) == {"k": 1}
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["r.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "x/r.json").stat().st_mode & 0o777 == 0o666 & ~mask  # not owner-only


def test_atomic_path_gives_plain_permissions_when_the_writer_replaces_the_file(tmp_path):
    """safetensors' save_file writes a new file over the temp path (owner-only, like mkstemp)."""
    import os

    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    from unisandbox.run.store import atomic_path

    target = tmp_path / "model.safetensors"
    with atomic_path(target) as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp))
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


@given(st.text(min_size=1, max_size=200))
def test_safe_name_never_escapes(text):
    name = safe_name(text)
    assert name and "/" not in name and "\\" not in name and name not in (".", "..")
    root = Path("/tmp/run-root")
    assert inside(root, "images", text, "normal", text).resolve().is_relative_to(root)


def test_safe_name_keeps_published_names():
    assert safe_name("17_A") == "17_A" and safe_name("5") == "5"
    assert safe_name("a b") != safe_name("a_b")  # changed ids get a hash: no collisions
    name = safe_name("../../escape.png")  # the file type survives the cleaning
    assert name.endswith(".png") and name.startswith("escape-") and "/" not in name


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2
    lo, hi = wilson_interval(50, 100)
    assert abs(lo - 0.404) < 0.01 and abs(hi - 0.596) < 0.01


def test_errors_are_not_silently_wrong():
    labels = ["yes", "no", "error", "yes"]
    default, reference = summarise(labels, False), summarise(labels, True)
    assert default["accuracy"] == 2 / 3 and default["n_error"] == 1
    assert reference["accuracy"] == 0.5 and reference["n"] == 4


def test_pair_units():
    samples = [Sample(id=f"{i}_{m}", prompt="", answer="", group=str(i)) for i in range(3) for m in "AB"]
    verdicts = {"0_A": "yes", "0_B": "yes", "1_A": "yes", "1_B": "error", "2_A": "no", "2_B": "error"}
    assert [v for _, v in unit_verdicts(samples, verdicts, "pair")] == ["yes", "error", "no"]


def test_weights_fingerprint_whole_when_small_every_tensor_when_large(tmp_path, monkeypatch):
    import os
    import shutil

    import torch
    from safetensors.torch import load_file, save_file
    from unisandbox import paths

    a = tmp_path / "a.bin"
    a.write_bytes(os.urandom(300_000))
    shutil.copy(a, tmp_path / "copy")  # another folder, another mtime: the same weights
    assert paths.weights_fingerprint(a) == paths.weights_fingerprint(tmp_path / "copy")
    assert paths.weights_fingerprint(a) == "sha256:" + paths.file_sha256(a)
    monkeypatch.setattr(paths, "WHOLE_HASH_BYTES", 1000)  # as for a 29 GB checkpoint
    assert paths.weights_fingerprint(a).startswith("sampled")  # not a safetensors file
    torch.manual_seed(0)
    state = {f"layer{i}.weight": torch.randn(64, 64) for i in range(8)}
    save_file(state, str(tmp_path / "base.safetensors"))
    base = paths.weights_fingerprint(tmp_path / "base.safetensors")
    assert base.startswith("safetensors-ends:")
    # a fine-tune of one layer among many (a connector, say): caught whatever its place
    state["layer5.weight"] += 1e-3
    save_file(state, str(tmp_path / "tuned.safetensors"))
    assert paths.weights_fingerprint(tmp_path / "tuned.safetensors") != base
    state["layer5.weight"] -= 1e-3
    state["layer7.weight"][-1] += 1.0  # the last row only (a new token's embedding)
    save_file(state, str(tmp_path / "grown.safetensors"))
    assert paths.weights_fingerprint(tmp_path / "grown.safetensors") != base
    assert load_file(str(tmp_path / "grown.safetensors")).keys() == state.keys()
    # a damaged header (offsets past the file, reversed) is sampled, never read to the end
    data = bytearray((tmp_path / "grown.safetensors").read_bytes())
    length = int.from_bytes(data[:8], "little")
    header = re.sub(r'"data_offsets":\[0,(\d+)\]', r'"data_offsets":[\1,0]',  # reversed, same length
                    data[8 : 8 + length].decode(), count=1)
    assert len(header) == length and json.loads(header)
    (tmp_path / "bad.safetensors").write_bytes(bytes(data[:8]) + header.encode() + bytes(data[8 + length:]))
    assert paths.weights_fingerprint(tmp_path / "bad.safetensors").startswith("sampled")


def test_resume_identities_compare_where_a_fingerprint_is_missing_or_none():
    from unisandbox.protocols import WEIGHTS_FINGERPRINT, resume_identities

    a = {"class": "M", "checkpoint": "/x", WEIGHTS_FINGERPRINT: "sha256:1"}
    assert resume_identities(a, {**a, "checkpoint": "/y"})[0] == resume_identities(a, {**a, "checkpoint": "/y"})[1]
    old = {"class": "M", "checkpoint": "/x"}  # recorded before fingerprints: the path decides
    was, now = resume_identities(old, {**a, "checkpoint": "/y"})
    assert was != now and resume_identities(old, a)[0] == resume_identities(old, a)[1]
    none = {**a, WEIGHTS_FINGERPRINT: None}  # an in-memory model: no file to fingerprint
    was, now = resume_identities(none, {**none, "checkpoint": "/y"})
    assert was != now
