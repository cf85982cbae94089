"""The glyph oracle: it solves every generated prompt with the audit's parsers, reasons with the
generator's own steps, answers every understanding question, and scores 100 % through the
engine with the exact glyph judge (the judge's calibration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from unisandbox.cli.main import main
from unisandbox.factories import build
from unisandbox.records import GenerationRequest
from unisandbox.registry import get_registry
from unisandbox.tasks.arith import MathTask
from unisandbox.tasks.knowledge import KnowledgeTask
from unisandbox.tasks.mapping import MappingTask
from unisandbox.tasks.published import write_published

TASKS = [lambda: MathTask(1, n=60, world="glyph", seed=1),
         lambda: MathTask(2, n=60, world="glyph", seed=1),
         lambda: MathTask(3, n=60, world="glyph", seed=1, counts="1-9"),
         lambda: MappingTask(1, n=30, world="glyph", seed=1),
         lambda: MappingTask(2, n=30, world="glyph", seed=1),
         lambda: MappingTask(3, n=30, world="glyph", seed=1),
         lambda: KnowledgeTask("forward", world="glyph", seed=1),
         lambda: KnowledgeTask("inverse", world="glyph", seed=1)]


@pytest.fixture(scope="module")
def oracle():
    spec = get_registry().model("glyph-oracle")
    assert spec.capabilities == {"generate", "chat"}
    return build(spec, {"seed": 1})


@pytest.mark.parametrize("make", TASKS)
def test_oracle_solves_reasons_and_answers(oracle, make):
    task = make()
    samples = task.samples()
    replies = oracle.chat([s.question for s in samples])
    for s, reply in zip(samples, replies, strict=True):
        solution = oracle.solve(s.prompt)
        assert solution.target == dict(s.target), s.prompt
        assert list(solution.steps) == list(s.meta["steps"]), s.prompt
        assert task.check_understanding(s, reply), (s.question, reply)


def test_generate_draws_canonical_images_and_thinks(oracle):
    from unisandbox.world.glyph_draw import render

    s = MathTask(2, n=1, world="glyph", seed=1).samples()[0]
    normal, think = oracle.generate([GenerationRequest(s.prompt, "normal", 3),
                                     GenerationRequest(s.prompt, "think", 3)])
    assert normal.think is None and think.think == " ".join(s.meta["steps"])
    assert np.array_equal(np.asarray(normal.image), np.asarray(render(s.target)))
    blank = oracle.generate([GenerationRequest("Draw a happy thought.", "think", 0),
                             GenerationRequest("Generate as many cups as 9 / 0.", "normal", 0)])
    for g in blank:
        arr = np.asarray(g.image)
        assert arr.shape == (32, 32, 3) and (arr == 255).all()
    assert blank[0].think  # it says why it cannot draw
    assert oracle.chat(["What is the capital of Mars?"]) == ["I cannot tell."]


def test_oracle_arguments_are_checked():
    spec = get_registry().model("glyph-oracle")
    from unisandbox.errors import UserError

    with pytest.raises(UserError, match="split"):
        build(spec, {"split": "holdout"})
    with pytest.raises(UserError, match="world"):
        build(spec, {"world": "mars"})


def test_oracle_scores_everything_through_the_engine(tmp_path, capsys):
    """The glyph judge's calibration: generated tasks and a written file, all 100 %."""
    path = write_published(MappingTask(2, n=10, world="glyph", seed=0).samples(), "mapping",
                           tmp_path / "mapping2.jsonl", extras=False)
    code = main(["eval", "--model", "glyph-oracle", "--task", "math-1", "--task", "math-3",
                 "--task", "mapping-3", "--task", "knowledge-inverse", "--task-arg", "world=glyph",
                 "--task-arg", "n=12", "--judge", "glyph", "--mode", "normal,think",
                 "--out", str(tmp_path / "run"), "--quiet", "--json"])
    results = json.loads(capsys.readouterr().out)
    assert code == 0
    for name, task in results["tasks"].items():
        cells = task["levels"]["all"]
        for mode in ("normal", "think", "understanding"):
            assert cells[mode]["accuracy"] == 1.0, (name, mode, cells[mode])
        assert task["chance"] is not None and task["chance"] < 1
        facets = cells["normal"]["facets"]  # per picture: pairs count twice
        assert all(f["accuracy"] == 1.0 for f in facets.values())
        assert facets["object" if "knowledge" not in name else "age"]["n"] == 12 * (
            2 if name.startswith("mapping") else 1)
    assert set(results["tasks"]["math-1"]["levels"]["all"]["normal"]["facets"]) == {"object", "count"}
    code = main(["eval", "--model", "glyph-oracle", "--task", "unisandbox-file",
                 "--task-arg", f"path={path}", "--task-arg", "world=glyph", "--judge", "glyph",
                 "--mode", "normal", "--out", str(tmp_path / "file-run"), "--quiet", "--json"])
    results = json.loads(capsys.readouterr().out)
    cells = results["tasks"]["mapping2"]["levels"]["2"]
    assert code == 0 and cells["normal"]["accuracy"] == 1.0 and cells["normal"]["n"] == 10
    assert cells["understanding"]["accuracy"] == 1.0
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "### What the pictures got right" in report and "| math-1 | 1 | G-normal | 100.0 (n 12) | 100.0 (n 12) |" in report


def test_a_glyph_size_that_is_not_a_whole_scale_is_refused_when_built():
    from unisandbox.errors import UserError

    with pytest.raises(UserError, match="size must be a multiple of 32 in the glyph world, got 100"):
        build(get_registry().model("glyph-oracle"), {"size": 100})
    assert build(get_registry().model("glyph-oracle"), {"size": 96}).size == 96


def test_an_oracle_of_other_characters_says_so_once():
    from unisandbox.errors import DataWarning

    task = build(get_registry().task("knowledge-forward"), {"world": "glyph", "n": 4, "seed": 3})
    oracle = build(get_registry().model("glyph-oracle"), {})  # seed 0: other characters
    requests = [GenerationRequest(s.prompt, "normal", 0) for s in task.samples()]
    with pytest.warns(DataWarning, match="does not know the character") as caught:
        oracle.generate(requests)
        oracle.generate(requests)
    assert len(caught) == 1
    asking = build(get_registry().model("glyph-oracle"), {})  # U alone meets them too
    with pytest.warns(DataWarning, match="does not know the character"):
        assert asking.chat([s.question for s in task.samples()]) == ["I cannot tell."] * 4
    matched = build(get_registry().model("glyph-oracle"), {"seed": 3})
    assert all(np.asarray(g.image).min() < 255 for g in matched.generate(requests))
