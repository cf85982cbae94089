"""probe-transfer: before vs after injection, forward vs inverse, from two lens folders."""

from __future__ import annotations

import json

import pytest
from unisandbox.errors import UserError
from unisandbox.protocols.analysis import RESULT_FILE, SECTION_HTML
from unisandbox.run.config import Component
from unisandbox.run.probe import run_probe
from unisandbox_probes.lens import LensProbe

TASKS = "knowledge-forward,knowledge-inverse"


@pytest.fixture(scope="module")
def lens_folders(planted_model, tmp_path_factory):
    """The base model knows nothing; the 'injected' one puts the answer's first word at q1,
    layer 3, in forward prompts only (knowledge reaches forward, not inverse)."""
    answers = {s.prompt: s for s in LensProbe(TASKS, n_characters=2).samples()}
    known = {"elderly", "woman", "boy", "apples", "south"}

    def injected(prompt, mode):
        sample = answers[prompt]
        if "favorite" in prompt and "From the characters" in prompt:
            return {}
        first = next((w for w in sample.answer.lower().replace(".", "").split() if w in known), None)
        return {("q1", 3): first} if first else {}

    folders = {}
    for name, plant in (("before", lambda p, m: {}), ("after", injected)):
        folders[name] = tmp_path_factory.mktemp("lens") / name
        run_probe(Component("probe-lens", {"task": TASKS, "n_characters": 2}), folders[name],
                  modes=("normal", "think"), progress=False, model_object=planted_model(plant))
    return folders


def test_transfer_shows_the_injected_knowledge_forward_not_inverse(lens_folders, tmp_path):
    out = tmp_path / "transfer"
    summary = run_probe(Component("probe-transfer", {"before": str(lens_folders["before"]),
                                                     "after": str(lens_folders["after"])}),
                        out, progress=False)
    result = json.loads((out / RESULT_FILE).read_text())
    cells = {(c["task"], c["mode"]): c for c in result["cells"]}
    assert set(cells) == {(t, m) for t in TASKS.split(",") for m in ("normal", "think")}
    forward, inverse = cells["knowledge-forward", "normal"], cells["knowledge-inverse", "normal"]
    assert forward["best"]["layer"] == 3 and forward["best"]["delta"] > 0.05
    assert forward["delta"][3] == pytest.approx(forward["best"]["after"] - forward["best"]["before"], abs=1e-5)
    assert max(abs(d) for d in inverse["delta"]) < 0.01
    assert forward["n"] == 6 and forward["n_before_only"] == 0
    assert (out / "transfer_queries_mean.png").is_file()
    assert "data:image/png;base64," in (out / SECTION_HTML).read_text()
    assert summary["table"]["headers"][4:9] == ["before", "after", "after - before",
                                                "other answers before", "other answers after"]
    assert forward["best"]["control_after"] < 0.02  # the injected answer, not any answer
    assert json.loads((out / "config.json").read_text())["model"] is None


def test_transfer_errors_name_the_folder(lens_folders, tmp_path):
    with pytest.raises(UserError, match=r"before=.*holds no probe\.json"):
        run_probe(Component("probe-transfer", {"before": str(tmp_path), "after": str(lens_folders["after"])}),
                  tmp_path / "t1", progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / RESULT_FILE).write_text("{not json")
    with pytest.raises(UserError, match=r"bad/probe.json:1: not valid JSON"):
        run_probe(Component("probe-transfer", {"before": str(bad), "after": str(lens_folders["after"])}),
                  tmp_path / "t2", progress=False)
    (bad / RESULT_FILE).write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match=r"bad/probe.json: not UTF-8"):
        run_probe(Component("probe-transfer", {"before": str(bad), "after": str(lens_folders["after"])}),
                  tmp_path / "t2", progress=False)
    edited = json.loads((lens_folders["after"] / RESULT_FILE).read_text())
    edited["samples"][0]["prob"] = "x"  # hand-edited: named, not a TypeError
    (bad / RESULT_FILE).write_text(json.dumps(edited))
    with pytest.raises(UserError, match=r"field 'samples\[0\]\.prob'"):
        run_probe(Component("probe-transfer", {"before": str(bad), "after": str(lens_folders["after"])}),
                  tmp_path / "t2", progress=False)
    edited = json.loads((lens_folders["after"] / RESULT_FILE).read_text())
    edited["samples"][0]["id"] = [1]
    (bad / RESULT_FILE).write_text(json.dumps(edited))
    with pytest.raises(UserError, match=r"field 'samples\[0\]\.id'"):
        run_probe(Component("probe-transfer", {"before": str(bad), "after": str(lens_folders["after"])}),
                  tmp_path / "t2", progress=False)
    with pytest.raises(UserError, match="give both folders"):
        run_probe(Component("probe-transfer", {"before": str(bad)}), tmp_path / "t3", progress=False)


def test_transfer_refuses_folders_without_common_samples(lens_folders, tmp_path, planted_model):
    other = tmp_path / "other"
    run_probe(Component("probe-lens", {"task": "math-1", "n": 2}), other, modes=("normal",),
              progress=False, model_object=planted_model(lambda p, m: {}))
    with pytest.raises(UserError, match="share no"):
        run_probe(Component("probe-transfer", {"before": str(other), "after": str(lens_folders["after"])}),
                  tmp_path / "t", progress=False)


def test_the_transfer_figure_shows_every_panel_on_one_scale(tmp_path, monkeypatch):
    """A later panel's larger values are not clipped by the first panel's scale."""
    from unisandbox_probes import figures

    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.append(fig) or path)
    panels = {"knowledge-forward": {"normal": {"before": [0.01, 0.02], "after": [0.03, 0.06]}},
              "knowledge-inverse": {"think": {"before": [0.02, 0.07], "after": [0.05, 0.144]}}}
    figures.transfer_lines(panels, "queries_mean", "t", tmp_path / "f.png")
    for ax in saved[0].axes:
        low, high = ax.get_ylim()
        assert low == 0.0 and high >= 0.144


def test_transfer_keeps_to_the_modes_asked_and_warns_about_samples_probed_once(lens_folders, tmp_path):
    from unisandbox.errors import DataWarning

    fewer = tmp_path / "fewer"
    fewer.mkdir()
    after = json.loads((lens_folders["after"] / RESULT_FILE).read_text())
    first_think = next(i for i, r in enumerate(after["samples"]) if r["mode"] == "think")
    del after["samples"][first_think]  # one sample the after folder did not probe
    (fewer / RESULT_FILE).write_text(json.dumps(after))
    out = tmp_path / "t"
    with pytest.warns(DataWarning, match=r"1 sample\(s\) probed only before .* are left out"):
        run_probe(Component("probe-transfer", {"before": str(lens_folders["before"]), "after": str(fewer)}),
                  out, modes=("think",), progress=False)
    cells = json.loads((out / RESULT_FILE).read_text())["cells"]
    assert {c["mode"] for c in cells} == {"think"}
