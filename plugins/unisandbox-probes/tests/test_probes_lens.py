"""The lens on a model whose internals are known: it finds what is planted, nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from statistics import fmean

import pytest
from unisandbox.errors import UserError
from unisandbox.protocols.analysis import RESULT_FILE, SECTION_HTML, SECTION_MD
from unisandbox_probes.lens import LensProbe


def cell(result: dict, task: str, mode: str, level: str | None = None) -> dict:
    found = [c for c in result["cells"] if c["task"] == task and c["mode"] == mode
             and (level is None or c["level"] == level)]
    assert len(found) == 1, [(c["task"], c["level"], c["mode"]) for c in result["cells"]]
    return found[0]


def by_prompt(probe: LensProbe) -> dict:
    return {s.prompt: s for s in probe.samples()}


def test_finds_the_planted_count_at_its_query_and_layer_only(planted_model, tmp_path):
    probe = LensProbe("math-1", world="glyph", n=6, top_k=3, threshold=0.2, batch_size=4)
    answers = by_prompt(probe)

    def plant(prompt, mode):
        count = str(answers[prompt].target["count"])
        return {("q1", 3): count} if mode == "normal" else {("q2", 2): count}

    summary = probe.analyze(planted_model(plant), ["normal", "think"], tmp_path)
    result = json.loads((tmp_path / RESULT_FILE).read_text())

    for mode, (label, layer) in {"normal": ("q1", 3), "think": ("q2", 2)}.items():
        c = cell(result, "math-1", mode)
        assert c["n"] == 6 and c["labels"] == ["baseline", "q0", "q1", "q2"]
        mean = c["mean"]["relevant"]
        pos = c["labels"].index(label)
        assert mean[layer][pos] > 0.95  # what is there is found
        others = [mean[lay][p] for lay in range(5) for p in range(4) if (lay, p) != (layer, pos)]
        assert max(others) < 0.01  # ... and nothing else is
        assert max(c["per_layer"]["baseline"]) < 0.01
        assert c["mean"]["control"][layer][pos] < 0.01 and c["best"]["control"] < 0.01
        assert [s["label"] for s in c["shown"]] == [label]
        assert c["shown"][0]["layer"] == layer
        assert c["best"]["layer"] == layer and c["best"]["queries_argmax"] == label
        # the planted word also tops the per-sample top-k at that cell
        for record in result["samples"]:
            if record["mode"] == mode:
                top = record["top"][layer][pos][0]
                assert top[0] == record["words"]["count"][0]["word"] and top[1] > 0.95
                assert record["chance"]["count"] == pytest.approx(
                    len(record["words"]["count"][0]["ids"]) / record["vocabulary_size"], rel=1e-4)
    assert [r["mode"] for r in result["rows"]] == ["normal", "think"]
    row = result["rows"][0]
    assert row["layer_query"] == 3 and all(q == pytest.approx(1 / 3, abs=0.02) for q in row["query"])
    assert all(b < 0.01 for b in row["baseline"]) and len(row["query"]) == 6
    assert summary["table"]["rows"][0][:4] == ["math-1", "1", "normal", 6]


def test_does_not_find_an_answer_that_is_not_there(planted_model, tmp_path):
    """A wrong count planted where the answer would be: the lens sees it, the measure does not."""
    probe = LensProbe("math-1", world="glyph", n=6, threshold=0.05)
    answers = by_prompt(probe)

    def plant(prompt, mode):
        return {("q1", 3): str(answers[prompt].target["count"] + 7)}

    probe.analyze(planted_model(plant), ["normal"], tmp_path)
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    c = cell(result, "math-1", "normal")
    assert max(max(row) for row in c["mean"]["relevant"]) < 0.01
    assert c["shown"] == []
    for record in result["samples"]:  # the lens does see the planted (wrong) number there
        wrong = str(int(record["words"]["count"][0]["word"]) + 7)
        assert record["top"][3][2][0][0] == wrong
    assert "no position exceeds 0.05" in (tmp_path / SECTION_MD).read_text()


def test_the_same_number_everywhere_is_not_the_answer(planted_model, tmp_path):
    """A position that always says "2" holds the answer only for items whose answer is 2; the
    other-answers control shows it holds another answer just as often."""
    probe = LensProbe("math-1", world="glyph", n=20)
    probe.analyze(planted_model(lambda p, m: {("q0", 2): "2"}), ["normal"], tmp_path)
    c = cell(json.loads((tmp_path / RESULT_FILE).read_text()), "math-1", "normal")
    counts = [s.target["count"] for s in probe.samples()]
    distinct = sorted(set(counts))
    assert len(distinct) > 2
    # each item vs every other item with a different count: "2" is right for the 2s among them
    expected_control = sum((counts.count(2) if k != 2 else 0) / (len(counts) - counts.count(k))
                           for k in counts) / len(counts)
    assert c["mean"]["relevant"][2][1] == pytest.approx(counts.count(2) / len(counts), abs=0.01)
    assert c["mean"]["control"][2][1] == pytest.approx(expected_control, abs=0.01)


def test_a_word_many_answers_share_is_not_specific(planted_model, tmp_path):
    """Always "woman" at one query: P(relevant) is high for every woman's portrait, and the
    other-answers control (the answers shuffled among the portraits) is exactly as high."""
    probe = LensProbe("knowledge-forward", world="glyph", n_characters=6)
    probe.analyze(planted_model(lambda p, m: {("q0", 2): "woman"}), ["normal"], tmp_path)
    records = [r for r in json.loads((tmp_path / RESULT_FILE).read_text())["samples"]
               if "portrait" in r["prompt"]]
    answers = [frozenset(t for w in r["words"]["answer"] for t in w["tokens"]) for r in records]
    has = [float("woman" in a) for a in answers]
    assert 0 < sum(has) < len(has)
    expected = []
    for a in answers:
        others = [h for b, h in zip(answers, has, strict=True) if b != a]
        expected.append(sum(others) / len(others))
    got = [r["prob"]["control"][2][1] for r in records]
    assert got == pytest.approx(expected, abs=0.01)
    assert [r["prob"]["relevant"][2][1] for r in records] == pytest.approx(has, abs=0.01)
    assert abs(fmean(got) - fmean(has)) < 0.15  # not specific: the control says so


def test_distractor_planted_shows_in_the_distractor_group_not_the_answer(planted_model, tmp_path):
    probe = LensProbe("mapping-1", world="glyph", n=3)
    answers = by_prompt(probe)

    def plant(prompt, mode):
        wrong = answers[prompt].meta["distractors"][0].split()[-1]  # the other object's noun
        return {("q0", 4): wrong}

    probe.analyze(planted_model(plant), ["normal"], tmp_path)
    c = cell(json.loads((tmp_path / RESULT_FILE).read_text()), "mapping-1", "normal", "1")
    assert c["mean"]["distractor"][4][1] > 0.95
    assert c["mean"]["relevant"][4][1] < 0.01 and c["relevant_group"] == ["answer"]


def test_first_piece_stands_for_an_unknown_word(planted_model, tmp_path):
    probe = LensProbe("knowledge-forward", world="glyph", n_characters=2)
    answers = by_prompt(probe)

    def plant(prompt, mode):
        return {("q2", 1): "straw"} if answers[prompt].answer == "strawberries" else {}

    probe.analyze(planted_model(plant), ["normal"], tmp_path)
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    straw = [r for r in result["samples"] if r["answer"] == "strawberries"]
    if not straw:
        pytest.skip("no character of this seed likes strawberries")
    words = straw[0]["words"]["answer"][0]
    assert words["piece"] is True and words["tokens"] == ["straw"]
    assert straw[0]["prob"]["relevant"][1][3] > 0.95
    assert "straw" in (tmp_path / RESULT_FILE).read_text()


def test_context_position_normal_vs_think(planted_model, tmp_path):
    """A MoT model (BAGEL) reports one ``context`` position: same code, no baseline, no rows."""
    probe = LensProbe("knowledge-forward", world="glyph", n_characters=2)
    answers = by_prompt(probe)

    def plant(prompt, mode):
        word = answers[prompt].answer.split()[-1]  # fruit or flower name; portraits: "hair."
        return {("context", 4): "apples"} if mode == "think" and word == "apples" else {}

    model = planted_model(plant, labels=("context",))
    probe.analyze(model, ["normal", "think"], tmp_path)
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    normal, think = cell(result, "knowledge-forward", "normal"), cell(result, "knowledge-forward", "think")
    assert set(think["per_layer"]) == {"context"} and result["rows"] == []
    n_apples = sum(1 for s in probe.samples() if s.answer == "apples")
    assert think["per_layer"]["context"][4] == pytest.approx(n_apples / think["n"], abs=0.01)
    assert max(normal["per_layer"]["context"]) < 0.01
    assert {r.mode for r in model.calls} == {"normal", "think"}
    assert (tmp_path / "heatmap_knowledge-forward_all.png").stat().st_size > 1000


def test_output_files_are_complete_and_self_contained(planted_model, tmp_path):
    probe = LensProbe("math-1,math-2", world="glyph", n=3)
    answers = by_prompt(probe)
    probe.analyze(planted_model(lambda p, m: {("q0", 2): str(answers[p].target["count"])}),
                  ["normal"], tmp_path)
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    assert [(c["task"], c["level"]) for c in result["cells"]] == [("math-1", "1"), ("math-2", "2")]
    md = (tmp_path / SECTION_MD).read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(figures) == 4 and all((tmp_path / f).is_file() for f in figures)
    assert all(Path(f).suffix == ".png" and (tmp_path / f).read_bytes()[:4] == b"\x89PNG" for f in figures)
    html = (tmp_path / SECTION_HTML).read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http" not in html and "<script" not in html
    assert "q0" in md and "| q0 | 2 |" in md


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="no task among math-1 takes argument 'n_characters'"):
        LensProbe("math-1", n_characters=3)
    with pytest.raises(UserError, match="top_k"):
        LensProbe("math-1", top_k=0)
    with pytest.raises(UserError, match="threshold"):
        LensProbe("math-1", threshold=2)
    for bad in ({"top_k": True}, {"batch_size": True}, {"threshold": True}, {"threshold": float("nan")}):
        with pytest.raises(UserError, match=next(iter(bad))):  # true was taken as 1
            LensProbe("math-1", **bad)
    with pytest.raises(UserError, match="unknown task 'math-9'"):
        LensProbe("math-9")
    with pytest.raises(UserError, match="itself a probe"):
        LensProbe("probe-lens")
    both = LensProbe("math-1,knowledge-forward", n=2, n_characters=2)  # each takes what it knows
    assert [t.name for t in both.tasks] == ["math-1", "knowledge-forward"]


def test_a_model_that_breaks_the_protocol_is_named(planted_model, tmp_path):
    class Broken(planted_model):
        def logit_lens(self, hidden):
            return super().logit_lens(hidden)[:, :1]

    probe = LensProbe("math-1", n=1)
    with pytest.raises(RuntimeError, match=r"Broken\.logit_lens"):
        probe.analyze(Broken(lambda p, m: {}), ["normal"], tmp_path)
