"""``unisandbox compare``: accuracies side by side, difference, interval separation, z-test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unisandbox.cli.main import main
from unisandbox.report.compare import compare_results
from unisandbox.report.stats import Cell, mcnemar_exact, one_sided_p, separated, two_proportion_z
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner


def toy_run(out: Path, skill: int) -> Path:
    Runner(RunConfig(model=Component("toy-painter", {"skill": skill}),
                     tasks=(Component("toy-shades", {"n": 20}),), judge=Component("toy-pixel"),
                     out=out, batch_size=10), progress=False).run()
    return out


def test_two_proportion_z_test_matches_the_textbook_value():
    # 5/20 vs 12/20: pooled p = 17/40, z = 0.35 / sqrt(.425 * .575 * (1/20 + 1/20))
    z, p = two_proportion_z(Cell.of(5, 20), Cell.of(12, 20))
    assert z == pytest.approx(2.238926, abs=1e-6) and p == pytest.approx(0.025161, abs=1e-6)
    assert one_sided_p(Cell.of(5, 20), Cell.of(12, 20)) == pytest.approx(p / 2)
    assert one_sided_p(Cell.of(12, 20), Cell.of(5, 20)) == pytest.approx(1 - p / 2)
    assert two_proportion_z(Cell.of(0, 10), Cell.of(0, 30)) == (0.0, 1.0)
    assert two_proportion_z(Cell.of(0, 0), Cell.of(3, 10)) is None
    assert separated(Cell.of(2, 50), Cell.of(45, 50)) is True
    assert separated(Cell.of(5, 20), Cell.of(12, 20)) is False


def test_compare_cli_table_and_json(toy_plugin, tmp_path, capsys):
    a, b = toy_run(tmp_path / "before", 5), toy_run(tmp_path / "after", 12)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "B − A" in out and "CIs separate" in out and "McNemar: the exact McNemar test" in out
    line = next(x for x in out.splitlines() if x.startswith("toy-shades") and " all " in x
                and "G-normal" in x)
    # the same 20 items in both runs: paired, 7 right only in B, none only in A
    assert "25.0 [" in line and "60.0 [" in line and "+35.0" in line and "0.016" in line
    assert line.endswith("McNemar")

    assert main(["compare", str(a), str(b), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    by = {(r["level"], r["mode"]): r for r in rows}
    normal = by["all", "normal"]
    assert normal["a"]["accuracy"] == 0.25 and normal["b"]["accuracy"] == 0.6
    assert normal["diff"] == pytest.approx(0.35) and normal["p_value"] == pytest.approx(2 / 2**7)
    assert normal["test"] == "mcnemar" and normal["discordant"] == {"b_only": 7, "a_only": 0}
    assert normal["intervals_separate"] is False
    assert by["all", "think"]["diff"] == 0 and by["all", "understanding"]["p_value"] == 1.0
    assert {k[0] for k in by} == {"1", "2", "all"}


def test_compare_out_writes_a_report_with_the_comparison_on_top(toy_plugin, tmp_path, capsys):
    a, b = toy_run(tmp_path / "before", 0), toy_run(tmp_path / "after", 20)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.html").read_text()
    assert text.index('id="compare"') < text.index('id="run-before"') < text.index('id="run-after"')
    assert "Compare: A = before, B = after" in text
    md = (tmp_path / "rep" / "report.md").read_text()
    row = next(x for x in md.splitlines() if x.startswith("| toy-shades | all | G-normal"))
    # 0/20 -> 20/20: the intervals separate and the paired test is decisive
    assert "| +100.0 | yes | <0.001 | McNemar |" in row
    assert "exact McNemar test" in md and "exact McNemar test" in text


def test_compare_rows_cover_tasks_in_either_run():
    cell = {"accuracy": 0.5, "n": 2, "n_yes": 1, "n_error": 0, "ci95": [0.1, 0.9]}
    a = {"modes": ["normal"], "tasks": {"x": {"levels": {"all": {"normal": cell}}}}}
    b = {"modes": ["normal"], "tasks": {"y": {"levels": {"all": {"normal": cell}}}}}
    rows = compare_results(a, b)
    assert [(r.task, r.a is None, r.b is None) for r in rows] == [("x", False, True), ("y", True, False)]
    assert rows[0].diff is None and rows[0].p is None and rows[0].cells()[4] == "-"
    assert rows[0].test is None and rows[0].cells()[-1] == "-"


def test_compare_of_a_non_run_is_a_user_error(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and len(err.strip().splitlines()) == 1


def test_compare_says_when_the_items_differ_and_refuses_runs_with_nothing_shared(
        toy_plugin, tmp_path, capsys):
    import shutil

    a = toy_run(tmp_path / "a", 5)
    b = Runner(RunConfig(model=Component("toy-painter", {"skill": 12}),
                         tasks=(Component("toy-shades", {"n": 10}),), judge=Component("toy-pixel"),
                         out=tmp_path / "b", batch_size=10), progress=False).run() and tmp_path / "b"
    assert main(["compare", str(a), str(b), "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning: toy-shades: A and B drew different items" in captured.err
    # other items under the same ids: never paired
    assert {r["test"] for r in json.loads(captured.out)["rows"] if r["a"] and r["b"]} == {"z"}
    # a run of another task only: nothing to compare
    other = tmp_path / "other"
    shutil.copytree(a, other)
    results = json.loads((other / "results.json").read_text())
    results["tasks"] = {"toy-other": results["tasks"]["toy-shades"]}
    (other / "results.json").write_text(json.dumps(results))
    assert main(["compare", str(a), str(other)]) == 2
    err = capsys.readouterr().err
    assert "share no measured task" in err and "B: toy-other" in err


def test_compare_and_findings_say_what_a_reader_must_know(toy_plugin, tmp_path, capsys):
    a = toy_run(tmp_path / "a", 5)
    ref = Runner(RunConfig(model=Component("toy-painter", {"skill": 5}),
                           tasks=(Component("toy-shades", {"n": 20}),), judge=Component("toy-pixel"),
                           out=tmp_path / "ref", batch_size=10, reference_scoring=True),
                 progress=False).run() and tmp_path / "ref"
    assert main(["compare", str(a), str(ref)]) == 0
    assert "count judge errors differently" in capsys.readouterr().err
    # a run missing records of a task it lists: findings say so, as report and compare do
    lines = (a / "samples.jsonl").read_text().splitlines()
    (a / "samples.jsonl").write_text("\n".join(lines[:5]) + "\n")
    assert main(["findings", "--base", str(a), "--json"]) == 0
    captured = capsys.readouterr()
    assert "--base" in captured.err and "is not finished" in captured.err
    assert json.loads(captured.out)["warnings"][0].startswith(f"--base ({a}) is not finished")


def test_mcnemar_exact_matches_the_binomial_test():
    # 7 discordant items, all one way: p = 2 * 0.5**7; 2 vs 8: 2 * P(X <= 2 | n=10, 1/2)
    assert mcnemar_exact(7, 0) == pytest.approx(0.015625)
    assert mcnemar_exact(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert mcnemar_exact(8, 2) == mcnemar_exact(2, 8)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0


def test_compare_refuses_one_folder_given_twice(toy_plugin, tmp_path, capsys):
    a = toy_run(tmp_path / "a", 5)
    capsys.readouterr()
    assert main(["compare", str(a), str(tmp_path / "." / "a")]) == 2
    err = capsys.readouterr().err
    assert "is given twice" in err and len(err.strip().splitlines()) == 1


def test_compare_pairs_only_units_both_runs_judged(toy_plugin, tmp_path, capsys):
    """A judge error left out of one run's n: the units differ, so that cell is unpaired; a
    pair task pairs its A/B pairs (one unit each), not their members."""
    a, b = toy_run(tmp_path / "a", 5), toy_run(tmp_path / "b", 12)
    lines = [json.loads(x) for x in (b / "samples.jsonl").read_text().splitlines()]
    for record in lines:
        if record["mode"] == "normal" and record["id"] == "19":
            record["verdict"] = "error"
    (b / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    results = json.loads((b / "results.json").read_text())
    cell = results["tasks"]["toy-shades"]["levels"]["all"]["normal"]
    cell.update(Cell.of(12, 19, n_error=1).to_json())
    (b / "results.json").write_text(json.dumps(results))
    assert main(["compare", str(a), str(b), "--json"]) == 0
    by = {(r["level"], r["mode"]): r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert by["all", "normal"]["test"] == "z" and by["all", "think"]["test"] == "mcnemar"

    def pairs(out: Path, skill: int) -> Path:
        Runner(RunConfig(model=Component("toy-painter", {"skill": skill}),
                         tasks=(Component("toy-shades", {"n": 20, "pairs": True}),),
                         judge=Component("toy-pixel"), out=out, batch_size=10), progress=False).run()
        return out

    pa, pb = pairs(tmp_path / "pa", 5), pairs(tmp_path / "pb", 12)
    assert main(["compare", str(pa), str(pb), "--json"]) == 0
    normal = {(r["level"], r["mode"]): r for r in json.loads(capsys.readouterr().out)["rows"]}["all", "normal"]
    # pairs (0,1) (2,3) right in both; (4,5) .. (10,11) right only in B: 4 discordant units
    assert normal["a"]["n"] == 10 and normal["test"] == "mcnemar"
    assert normal["discordant"] == {"b_only": 4, "a_only": 0}
