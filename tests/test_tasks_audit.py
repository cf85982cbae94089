"""The label audit: it finds the known defects of the published files, passes every generated
set clean, and handles files of our own with planted defects."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from unisandbox.errors import UserError
from unisandbox.tasks.arith import MathTask
from unisandbox.tasks.audit import audit_paths
from unisandbox.tasks.knowledge import KnowledgeTask, corpus
from unisandbox.tasks.mapping import MappingTask
from unisandbox.tasks.published import DataWarning, write_conversations, write_published

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "unisandbox-official"
BENCH = REFERENCE / "benchmark"
needs_reference = pytest.mark.skipif(not BENCH.is_dir(), reason="reference files not present")


def _audit(paths, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return {Path(r.path).name: r for r in audit_paths(paths, **kw)}


def _ids(result, category=None):
    return {f.sample for f in result.findings if category is None or f.category == category}


@needs_reference
def test_audit_finds_the_known_published_defects():
    got = _audit([BENCH], rounding="floor")
    assert set(got) == {"benchmark", "math_1.jsonl", "math_2.jsonl", "math_3.jsonl",
                        "mapping1.jsonl", "mapping2.jsonl", "mapping3.jsonl"}
    m3 = got["math_3.jsonl"]
    one = next(f for f in m3.findings if f.sample == "1")
    assert one.category == "wrong" and "3 + 2 - √25 = 0" in one.detail and one.label == "1 orange"
    m2 = got["math_2.jsonl"]
    nine = next(f for f in m2.findings if f.sample == "9")
    assert nine.category == "wrong" and "10 % 3 + 1 = 2" in nine.detail and nine.expected == "2 pens"
    assert not got["math_1.jsonl"].findings
    mp2 = got["mapping2.jsonl"]
    assert {"12_B", "20_B", "65_B", "36_A", "36_B"} <= _ids(mp2, "unwinnable")
    labels = {f.sample: f.label for f in mp2.findings}
    assert labels["12_B"] == labels["20_B"] == "undefined" and labels["65_B"] == "N/A"
    assert "also carries Question_B" in next(f.detail for f in mp2.findings if f.sample == "36_A")
    assert mp2.counts()["unwinnable"] == 6 and mp2.units == 100
    assert got["mapping3.jsonl"].counts() == {"unwinnable": 10, "wrong": 2, "unverified": 0}
    know = got["benchmark"]
    assert _ids(know, "wrong") == {"2", "5", "8", "10"}  # 'young' where the training data says 'kid'
    assert all("'young'" in f.detail and "'kid'" in f.detail for f in know.findings)
    # the ceilings the labels impose (floor rounding)
    ceilings = {name: round(r.ceiling, 2) for name, r in got.items()}
    assert ceilings == {"benchmark": 0.92, "math_1.jsonl": 1.0, "math_2.jsonl": 0.89,
                        "math_3.jsonl": 0.79, "mapping1.jsonl": 1.0, "mapping2.jsonl": 0.94,
                        "mapping3.jsonl": 0.88}


@needs_reference
def test_rounding_policy_changes_the_math_ceiling():
    by_policy = {p: _audit([BENCH / "math_2.jsonl", BENCH / "math_3.jsonl"], rounding=p)
                 for p in ("floor", "round", "exact")}
    # √49 / 3 = 7/3 (math_2 id 10): wrong under floor and round, unwinnable under exact
    ten = {p: next(f for f in r["math_2.jsonl"].findings if f.sample == "10").category
           for p, r in by_policy.items()}
    assert ten == {"floor": "wrong", "round": "wrong", "exact": "unwinnable"}
    assert by_policy["round"]["math_3.jsonl"].counts()["wrong"] == 21
    assert by_policy["exact"]["math_2.jsonl"].counts()["unwinnable"] == 3
    with pytest.raises(UserError, match="rounding"):
        audit_paths([BENCH / "math_2.jsonl"], rounding="up")


@pytest.mark.parametrize("make", [lambda: MathTask(1, n=200, seed=7),
                                  lambda: MathTask(2, n=200, seed=7, world="glyph"),
                                  lambda: MathTask(3, n=200, seed=7, counts="1-9"),
                                  lambda: MappingTask(1, n=100, seed=7),
                                  lambda: MappingTask(2, n=100, seed=7, world="glyph"),
                                  lambda: MappingTask(3, n=100, seed=7)])
@pytest.mark.parametrize("extras", [True, False])
def test_generated_sets_audit_clean(make, extras, tmp_path):
    task = make()
    path = write_published(task.samples(), task.family, tmp_path / f"{task.name}.jsonl", extras=extras)
    for policy in ("floor", "exact"):
        result = _audit([path], rounding=policy, world=task.samples()[0].meta["world"])[path.name]
        assert not result.findings, result.findings[:3]
        assert result.ceiling == result.strict_ceiling == 1.0


def test_generated_knowledge_audits_clean_against_its_corpus(tmp_path):
    fwd = KnowledgeTask("forward", n_characters=8, seed=2)
    inv = KnowledgeTask("inverse", n_characters=8, seed=2)
    folder = tmp_path / "bench"
    write_published(fwd.samples(), "knowledge", folder / "Forward.jsonl", extras=False)
    write_published(inv.samples(), "knowledge", folder / "Pairs.jsonl", extras=False)
    write_conversations(corpus(fwd.characters(), fwd.world), tmp_path / "knowledge_train" / "all.jsonl")
    result = _audit([folder])["bench"]
    assert result.facts and result.units == 40 and not result.findings


def test_planted_defects_in_files_of_our_own(tmp_path):
    math = [{"Question": "Generate as many cups as the result of 7 - 4.", "Answer": "3 cups.", "id": "a"},
            {"Question": "Generate as many cups as the result of 7 - 4.", "Answer": "4 cups.", "id": "b"},
            {"Question": "Draw as many pens as 9 / 2.", "Answer": "4 pens", "id": "c"},
            {"Question": "Draw as many pens as 2 - 2.", "Answer": "1 pen", "id": "d"},
            {"Question": "Show the outcome of 2 + 1.", "Answer": "3 toys", "id": "e"},
            {"Question": "Draw as many pens as 4 / 0.", "Answer": "1 pen", "id": "f"},
            {"Question": "Draw as many cups as 2 + 1.", "Answer": "3 plates", "id": "g"},
            {"Question": "Draw as many pens as x plus y.", "Answer": "2 pens", "id": "h"}]
    path = tmp_path / "math_9.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in math))
    r = _audit([path], rounding="floor")[path.name]
    got = {f.sample: f.category for f in r.findings}
    assert got == {"b": "wrong", "d": "wrong", "e": "unwinnable", "f": "unwinnable",
                   "g": "wrong", "h": "unverified"}
    assert r.ceiling == pytest.approx(3 / 8) and r.strict_ceiling == pytest.approx(2 / 8)
    exact = _audit([path], rounding="exact")[path.name]
    assert "c" in _ids(exact, "unwinnable") and "c" not in got  # 9/2 with no rounding phrase

    rules = "Rule 1: 'A' maps to '$'. Rule 2: '$' means cups. Rule 3: 'B' maps to '%'."
    mapping = [{"ID": "1", "Question_A": f"{rules} Please generate the object represented by the letter 'A'.", "Answer": "cups"},
               {"ID": "1", "Question_B": f"{rules} Please generate the object represented by the letter 'B'.", "Answer": "pens"},
               {"ID": "2", "Question_A": f"{rules} Please generate the object represented by the letter 'A'.", "Answer": "pens"},
               {"ID": "2", "Question_B": f"{rules} Please generate the object represented by the letter 'A'.", "Answer": "a cup"}]
    path = tmp_path / "mapping9.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in mapping))
    r = _audit([path])[path.name]
    assert {(f.sample, f.category) for f in r.findings} == {("1_B", "unwinnable"), ("2_A", "wrong")}
    assert r.units == 2 and r.ceiling == 0.0


def test_audit_refuses_nothing_to_audit(tmp_path):
    write_conversations(corpus(KnowledgeTask("forward", n_characters=2).characters(),
                               KnowledgeTask("forward").world), tmp_path / "c.jsonl")
    with pytest.raises(UserError, match="nothing to audit"):
        audit_paths([tmp_path / "c.jsonl"])
    with pytest.raises(UserError, match="no such file"):
        audit_paths([tmp_path / "missing.jsonl"])


def test_a_label_may_write_its_count_as_a_word():
    from unisandbox.tasks.published import parse_count_label

    assert parse_count_label("Four cups.") == (4, "cups")
    assert parse_count_label("nineteen red stars") == (19, "red stars")
    assert parse_count_label("2 cups.") == (2, "cups") and parse_count_label("cups") is None
