"""The findings table: every claim's verdict logic on constructed results (reproduced, not
reproduced, not measured), the probe contract, findings.json, and its place in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unisandbox.cli.main import main
from unisandbox.errors import DataError, UserError
from unisandbox.report import write_report
from unisandbox.report.findings import (
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPRODUCED,
    combine,
    evaluate_findings,
    findings_table,
    load_findings,
    save_findings,
)
from unisandbox.report.stats import Cell

U = "understanding"


def results(**tasks: tuple[str, dict[str, tuple[int, int]]]) -> dict:
    """results.json for tasks given as name=(family, {mode: (n_yes, n)}) (one pooled level)."""
    out: dict = {"modes": ["normal", "think"], "scoring": "default", "tasks": {}}
    for name, (family, cells) in tasks.items():
        level = {mode: Cell.of(y, n).to_json() for mode, (y, n) in cells.items()}
        out["tasks"][name.replace("_", "-")] = {"family": family, "unit": "item", "chance": 0.2,
                                               "levels": {"all": level}}
    return out


def verdicts(**inputs) -> dict[int, str]:
    return {f.number: f.verdict for f in evaluate_findings(inputs)}


def base(math=(19, 4, 16), mapping=(18, 3, 15), n=20) -> dict:
    """A base run: (U, G-normal, G-think) successes out of n for each family."""
    def cells(t):
        return {U: (t[0], n), "normal": (t[1], n), "think": (t[2], n)}

    tasks = {}
    if math:
        tasks["math_1"] = ("math", cells(math))
    if mapping:
        tasks["mapping_1"] = ("mapping", cells(mapping))
    return results(**tasks)


def test_combine_rule():
    assert combine([True, True]) == REPRODUCED
    assert combine([True, False]) == NOT_REPRODUCED
    assert combine([None, False]) == NOT_REPRODUCED
    assert combine([True, None]) == NOT_MEASURED
    assert combine([]) == NOT_MEASURED


# --- claim 1: the reasoning gap ----------------------------------------------------------------
def test_gap_reproduced_not_reproduced_not_measured():
    assert verdicts(base=base())[1] == REPRODUCED
    assert verdicts(base=base(mapping=(18, 15, 16)))[1] == NOT_REPRODUCED  # mapping gap 15 points
    assert verdicts()[1] == NOT_MEASURED
    assert verdicts(base=base(mapping=None))[1] == NOT_MEASURED  # only math measured
    assert verdicts(base=base(math=(5, 5, 5), mapping=None))[1] == NOT_REPRODUCED


def test_gap_needs_separate_intervals_not_only_a_big_difference():
    # 4/5 vs 2/5: a 40-point gap whose intervals overlap (too few items to say)
    small = base(math=(4, 2, 4), mapping=(4, 2, 4), n=5)
    finding = evaluate_findings({"base": small})[0]
    assert finding.verdict == NOT_REPRODUCED and "intervals overlap" in finding.measured


def test_families_pool_tasks_and_levels():
    run = results(math_1=("math", {U: (10, 10), "normal": (0, 10)}),
                  math_2=("math", {U: (8, 10), "normal": (2, 10)}),
                  mapping_1=("mapping", {U: (20, 20), "normal": (0, 20)}))
    finding = evaluate_findings({"base": run})[0]
    assert finding.verdict == REPRODUCED
    assert finding.numbers["math"]["U"]["n"] == 20 and finding.numbers["math"]["U"]["n_yes"] == 18
    assert "math (math-1, math-2)" in finding.measured


# --- claim 2: think closes the gap -------------------------------------------------------------
def test_think_closes_the_gap():
    assert verdicts(base=base())[2] == REPRODUCED  # 12 of 15 and 12 of 15 points recovered
    assert verdicts(base=base(math=(19, 4, 8)))[2] == NOT_REPRODUCED  # 4 of 15: under half
    no_gap = evaluate_findings({"base": base(math=(10, 10, 14), mapping=(10, 10, 14))})[1]
    assert no_gap.verdict == NOT_REPRODUCED and "no gap to close" in no_gap.measured
    only_normal = results(math_1=("math", {U: (19, 20), "normal": (4, 20)}),
                          mapping_1=("mapping", {U: (19, 20), "normal": (4, 20)}))
    assert verdicts(base=only_normal)[2] == NOT_MEASURED


def test_think_gain_must_be_significant():
    # half the gap closed (2 of 4 points... on 8 items): 2/8 -> 4/8 is not significant
    tiny = base(math=(6, 2, 4), mapping=(6, 2, 4), n=8)
    assert verdicts(base=tiny)[2] == NOT_REPRODUCED


# --- claim 3: STARS ------------------------------------------------------------------------------
def stars_run(math: int, n: int = 40) -> dict:
    return results(math_1=("math", {"normal": (math, n), "think": (30, n)}))


def test_stars_internalises_and_filtering_matters():
    before = base(math=(38, 4, 30), mapping=(36, 6, 30), n=40)
    assert verdicts(base=before, stars=stars_run(30), stars_nofilter=stars_run(18))[3] == REPRODUCED
    # (a) fails: a 4-point lift
    assert verdicts(base=before, stars=stars_run(8), stars_nofilter=stars_run(2))[3] == NOT_REPRODUCED
    # (b) fails: the unfiltered run is as good
    got = evaluate_findings({"base": before, "stars": stars_run(30), "stars_nofilter": stars_run(31)})[2]
    assert got.verdict == NOT_REPRODUCED and got.numbers["math"]["pass"] is True
    assert got.numbers["filter"]["pass"] is False
    # not measured: no STARS run; or (a) passes but there is no --no-filter run
    assert verdicts(base=before)[3] == NOT_MEASURED
    assert verdicts(base=before, stars=stars_run(30))[3] == NOT_MEASURED
    # only families the STARS run measured count (mapping was not trained nor measured)
    assert "mapping" not in got.numbers


def test_stars_is_compared_with_the_base_on_the_tasks_it_measured():
    before = base(math=(38, 4, 30), mapping=None, n=40)
    before["tasks"]["math-2"] = {**before["tasks"]["math-1"], "levels": {"all": {
        "normal": Cell.of(40, 40).to_json()}}}  # a level STARS did not measure
    got = evaluate_findings({"base": before, "stars": stars_run(30), "stars_nofilter": stars_run(18)})[2]
    assert got.numbers["math"]["base"]["n"] == 40 and got.numbers["math"]["base"]["n_yes"] == 4
    assert got.verdict == REPRODUCED
    # a STARS task the base lacks: not compared at all
    stars = stars_run(30)
    stars["tasks"]["math-3"] = stars["tasks"]["math-1"]
    got = evaluate_findings({"base": base(math=(38, 4, 30), mapping=None, n=40), "stars": stars,
                             "stars_nofilter": stars_run(18)})[2]
    assert got.verdict == NOT_MEASURED and "no base G-normal on math-3" in got.measured


def test_stars_finding_says_what_the_lift_is_made_of():
    """With a judge that reports facets (glyph: object, count), the finding shows each one's
    change: a lift in the object alone is format adaptation, not internalised reasoning."""
    def with_facets(run: dict, obj: float, count: float) -> dict:
        cell = run["tasks"]["math-1"]["levels"]["all"]["normal"]
        cell["facets"] = {"object": {"accuracy": obj, "n": cell["n"]},
                          "count": {"accuracy": count, "n": cell["n"]}}
        return run

    before = with_facets(base(math=(38, 2, 30), mapping=None, n=40), 0.1, 0.2)
    stars = with_facets(stars_run(9), 0.95, 0.22)
    got = evaluate_findings({"base": before, "stars": stars, "stars_nofilter": stars_run(9)})[2]
    assert "right object 10.0 → 95.0, count 20.0 → 22.0 (chance 20.0)" in got.measured
    assert got.numbers["math"]["facets"]["stars"] == pytest.approx({"object": 0.95, "count": 0.22})


# --- claims 4 and 5: knowledge -------------------------------------------------------------------
def inject_run(forward=(5, 20), inverse=(2, 3), n=30) -> dict:
    tasks = {}
    if forward:
        tasks["knowledge_forward"] = ("knowledge", {U: (n - 1, n), "normal": (forward[0], n),
                                                    "think": (forward[1], n)})
    if inverse:
        tasks["knowledge_inverse"] = ("knowledge", {U: (n // 2, n), "normal": (inverse[0], n),
                                                    "think": (inverse[1], n)})
    return results(**tasks)


def test_thinking_helps_forward_transfer():
    assert verdicts(inject=inject_run())[4] == REPRODUCED
    assert verdicts(inject=inject_run(forward=(5, 6)))[4] == NOT_REPRODUCED
    assert verdicts(inject=inject_run(forward=(20, 5)))[4] == NOT_REPRODUCED
    assert verdicts(inject=inject_run(forward=None))[4] == NOT_MEASURED
    assert verdicts(base=inject_run())[4] == NOT_MEASURED  # before injection it does not count
    # the inverse task is not pooled into forward
    got = evaluate_findings({"inject": inject_run(inverse=(30, 30))})[3]
    assert got.numbers["think"]["n_yes"] == 20


def test_inverse_search_stays_hard():
    assert verdicts(inject=inject_run())[5] == REPRODUCED
    assert verdicts(inject=inject_run(inverse=(2, 12)))[5] == NOT_REPRODUCED  # think 40 %
    # 1/4 = 25 % but the interval reaches far above 50 %: too few items to call it low
    assert verdicts(inject=inject_run(forward=(1, 1), inverse=(1, 1), n=4))[5] == NOT_REPRODUCED
    assert verdicts(inject=inject_run(inverse=None))[5] == NOT_MEASURED
    learned = ("knowledge", {U: (29, 30), "normal": (0, 30)})
    partial = results(knowledge_forward=learned,
                      knowledge_inverse=("knowledge", {"normal": (1, 30)}))
    assert verdicts(inject=partial)[5] == NOT_MEASURED  # think not measured
    partial_bad = results(knowledge_forward=learned,
                          knowledge_inverse=("knowledge", {"normal": (20, 30)}))
    assert verdicts(inject=partial_bad)[5] == NOT_REPRODUCED


def test_inverse_search_is_not_measured_when_the_injection_did_not_take():
    """A model that never learned the facts fails inverse search trivially: "stays hard" says
    nothing until U on the injected facts (knowledge-forward) is above chance."""
    never_learned = inject_run(forward=(0, 0), inverse=(0, 0))
    never_learned["tasks"]["knowledge-forward"]["levels"]["all"][U] = Cell.of(0, 30).to_json()
    got = evaluate_findings({"inject": never_learned})[4]
    assert got.verdict == NOT_MEASURED
    assert got.measured.startswith("not measured, injection did not take: U on knowledge-forward "
                                   "0.0 [0.0, 11.4], chance 20.0")
    assert "G-normal 0.0" in got.measured and got.numbers["injection"]["pass"] is False
    # at chance is not "took" either: 6/30 = 20 %, the tasks' chance
    never_learned["tasks"]["knowledge-forward"]["levels"]["all"][U] = Cell.of(6, 30).to_json()
    assert verdicts(inject=never_learned)[5] == NOT_MEASURED
    # no forward U at all: nothing shows the facts were learned
    del never_learned["tasks"]["knowledge-forward"]
    got = evaluate_findings({"inject": never_learned})[4]
    assert got.verdict == NOT_MEASURED and "no U on knowledge-forward" in got.measured
    # U on the inverse direction is no precondition: learned facts can still fail it
    low_inverse_u = inject_run()
    low_inverse_u["tasks"]["knowledge-inverse"]["levels"]["all"][U] = Cell.of(0, 30).to_json()
    got = evaluate_findings({"inject": low_inverse_u})[4]
    assert got.verdict == REPRODUCED and "injection took: U on knowledge-forward" in got.measured


# --- claim 6: the probes ---------------------------------------------------------------------------
def probe_rows(query: list[float], baseline: list[float]) -> dict:
    return {"probe": "probe-lens", "rows": [
        {"task": "math-1", "mode": "normal", "query": query[: len(query) // 2],
         "baseline": baseline[: len(baseline) // 2]},
        {"task": "math-1", "mode": "think", "query": query[len(query) // 2 :],
         "baseline": baseline[len(baseline) // 2 :]}]}


def test_query_tokens_carry_the_answer():
    q = [0.3 + 0.01 * i for i in range(20)]
    b = [0.02 + 0.005 * (i % 3) for i in range(20)]
    got = evaluate_findings({"probes": probe_rows(q, b)})[5]
    assert got.verdict == REPRODUCED and got.numbers["n"] == 20 and got.numbers["ratio"] > 10
    assert "math-1 normal" in got.measured
    # no better than the baseline
    assert verdicts(probes=probe_rows(b, q))[6] == NOT_REPRODUCED
    # twice the baseline on average but noisy: the interval of the difference includes 0
    noisy_q, noisy_b = [0.9, 0.0, 0.0, 0.0], [0.1, 0.1, 0.1, 0.1]
    got = evaluate_findings({"probes": probe_rows(noisy_q, noisy_b)})[5]
    assert got.numbers["ratio"] >= 2 and got.numbers["diff_ci95"][0] < 0
    assert got.verdict == NOT_REPRODUCED
    assert verdicts(probes=None)[6] == NOT_MEASURED
    assert verdicts(probes={"rows": []})[6] == NOT_MEASURED
    with pytest.raises(DataError, match="not a probe's per-item rows"):  # a results.json, say
        verdicts(probes={"probe": "other"})


def test_queries_must_beat_the_control_when_the_probe_records_one():
    q = [0.3 + 0.01 * i for i in range(20)]
    b = [0.02] * 20
    rows = probe_rows(q, b)
    for row in rows["rows"]:  # every item's answer is as likely as the others': no specific answer
        row["control"] = list(row["query"])
    got = evaluate_findings({"probes": rows})[5]
    assert got.verdict == NOT_REPRODUCED and got.numbers["ratio"] > 10
    assert "vs control" in got.measured
    for row in rows["rows"]:
        row["control"] = [0.05] * len(row["query"])
    assert evaluate_findings({"probes": rows})[5].verdict == REPRODUCED


def test_probe_folder_and_malformed_rows(tmp_path):
    folder = tmp_path / "lens"
    folder.mkdir()
    q = [0.5] * 5 + [0.6] * 5
    (folder / "probe.json").write_text(json.dumps(probe_rows(q, [0.1] * 10)))
    assert verdicts(probes=folder)[6] == REPRODUCED
    with pytest.raises(DataError, match=r"'rows\[0\]': query and baseline differ"):
        evaluate_findings({"probes": {"rows": [{"query": [0.1, 0.2], "baseline": [0.1]}]}})
    with pytest.raises(DataError, match=r"rows\[0\].query"):
        evaluate_findings({"probes": {"rows": [{"query": [1.5], "baseline": [0.1]}]}})
    with pytest.raises(DataError, match=r"rows\[0\].control"):
        evaluate_findings({"probes": {"rows": [{"query": [0.1, 0.2], "baseline": [0.1, 0.1],
                                                "control": [0.1, None]}]}})
    with pytest.raises(UserError, match="no such probe file"):
        evaluate_findings({"probes": tmp_path / "nothing"})


def test_unknown_input_and_bad_results_are_user_errors():
    with pytest.raises(UserError, match="unknown findings input 'stras'"):
        evaluate_findings({"stras": {}})
    with pytest.raises(DataError, match="'tasks'"):
        evaluate_findings({"base": {"modes": []}})


# --- findings.json, the terminal table, the report ------------------------------------------------
def test_findings_json_round_trip_and_table(tmp_path):
    found = evaluate_findings({"base": base(), "inject": inject_run()})
    save_findings(tmp_path / "f.json", found)
    again = load_findings(tmp_path / "f.json")
    assert [f.to_json() for f in again] == json.loads(json.dumps([f.to_json() for f in found]))
    text = findings_table(again)
    assert "REPRODUCED" in text and "NOT MEASURED" in text and "U − G-normal ≥ 20" in text
    assert max(len(line) for line in text.splitlines()) <= 150
    (tmp_path / "bad.json").write_text(json.dumps({"findings": [{"number": 1, "claim": "c", "test": "t",
                                                               "measured": "m", "verdict": "maybe"}]}))
    with pytest.raises(DataError, match=r"findings\[0\].verdict"):
        load_findings(tmp_path / "bad.json")


def write_run(folder: Path, res: dict) -> Path:
    """A run folder holding just what the report reads (no samples log: no grid)."""
    folder.mkdir(parents=True)
    names = list(res["tasks"])
    (folder / "config.json").write_text(json.dumps({"run": {"model": {"name": "m", "args": {}},
                                                            "tasks": [{"name": t} for t in names]}}))
    (folder / "results.json").write_text(json.dumps(res))
    return folder


def test_findings_cli_and_report_show_the_table_first(tmp_path, capsys):
    b = write_run(tmp_path / "base", base())
    i = write_run(tmp_path / "inject", inject_run())
    f = tmp_path / "findings.json"
    assert main(["findings", "--base", str(b), "--inject", str(i), "--out", str(f)]) == 0
    printed = capsys.readouterr().out
    assert "Reasoning gap" in printed and "NOT MEASURED" in printed
    assert [x.verdict for x in load_findings(f)] == [REPRODUCED, REPRODUCED, NOT_MEASURED,
                                                     REPRODUCED, REPRODUCED, NOT_MEASURED]
    assert main(["findings", "--base", str(b), "--inject", str(i), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(f.read_text())  # one shape
    assert main(["report", str(b), str(i), "--out", str(tmp_path / "rep"), "--findings", str(f)]) == 0
    assert "Query tokens carry the answer" in capsys.readouterr().out
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.index('id="findings"') < html.index('id="run-base"')
    assert 'class="verdict v-not-measured"' in html and "U − G-normal ≥ 20 points" in html
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.index("## Findings") < md.index("## Run: base") and "**reproduced**" in md
    assert "samples.jsonl is missing or empty" in md
    # --out replaces a findings file, never a run's own files given by mistake
    results = (b / "results.json").read_text()
    assert main(["findings", "--base", str(b), "--out", str(f)]) == 0
    assert main(["findings", "--base", str(b), "--out", str(b / "results.json")]) == 2
    assert "is not a findings file" in capsys.readouterr().err
    assert (b / "results.json").read_text() == results
    # the warnings a findings file was written with (a run not finished) reach the report too
    save_findings(f, load_findings(f), ["--base (runs/base) is not finished: math-2 missing"])
    assert main(["report", str(b), "--out", str(tmp_path / "rep2"), "--findings", str(f)]) == 0
    assert "warning: " in capsys.readouterr().err
    for name in ("report.html", "report.md"):
        assert "--base (runs/base) is not finished" in (tmp_path / "rep2" / name).read_text()
    f.write_text(json.dumps({**json.loads(f.read_text()), "warnings": "not a list"}))
    assert main(["report", str(b), "--out", str(tmp_path / "rep3"), "--findings", str(f)]) == 2
    assert "warnings" in capsys.readouterr().err


def test_write_report_with_findings_objects(tmp_path):
    run = write_run(tmp_path / "r", base())
    write_report([run], tmp_path / "o", findings=evaluate_findings({"base": run}))
    assert "Think mode closes much of the gap" in (tmp_path / "o" / "report.md").read_text()


def test_an_item_probed_in_two_modes_counts_once_and_a_partial_control_is_still_tested():
    q, b = [0.30, 0.32, 0.31], [0.01, 0.02, 0.01]
    rows = [{"task": "math-1", "mode": mode, "ids": ["1", "2", "3"], "query": q, "baseline": b}
            for mode in ("normal", "think")]
    got = evaluate_findings({"probes": {"rows": rows}})[5]
    assert got.numbers["n"] == 3 and got.measured.startswith("n=3 items")
    # a mapping row carries a control the math rows lack: it is tested on the items that have one
    rows.append({"task": "mapping-1", "mode": "normal", "ids": ["1_A", "1_B", "2_A"],
                 "query": q, "baseline": b, "control": [0.5, 0.5, 0.5]})
    got = evaluate_findings({"probes": {"rows": rows}})[5]
    assert got.verdict == NOT_REPRODUCED and got.numbers["control_n"] == 3
    assert "on the 3 items that have one" in got.measured


@pytest.mark.parametrize(("edit", "needle"), [
    ({"n_yes": 25}, r"n_yes': 25 right of n=20"),
    ({"ci95": [0.9, 0.1]}, r"ci95': expected 0 <= low <= high <= 1"),
    ({"accuracy": 0.5}, r"accuracy': 0.5 is not n_yes / n"),
    ({"n": True}, r"n': expected a count"),
])
def test_impossible_numbers_in_a_results_file_are_refused_not_reported(edit, needle, tmp_path):
    res = base()
    res["tasks"]["math-1"]["levels"]["all"]["normal"].update(edit)
    folder = write_run(tmp_path / "edited", res)
    with pytest.raises(DataError, match=needle):
        evaluate_findings({"base": folder})


def test_a_demo_folder_given_to_report_or_compare_points_to_its_report_and_runs(tmp_path, capsys):
    demo = tmp_path / "demo"
    b = write_run(demo / "runs" / "base", base())
    i = write_run(demo / "runs" / "inject", inject_run())
    (demo / "demo.json").write_text(json.dumps({"options": {"quick": True}}))
    assert main(["report", str(demo)]) == 2
    err = capsys.readouterr().err
    assert f"{demo} is a demo folder (`unisandbox demo`), not a run folder" in err
    assert f"its report will be {demo / 'report' / 'report.html'} once the demo has finished" in err
    assert f"its run folders are {b}, {i}" in err and "no config.json" not in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    (demo / "report").mkdir()
    (demo / "report" / "report.html").write_text("<html></html>")
    assert main(["compare", str(demo), str(b)]) == 2
    assert f"its report is {demo / 'report' / 'report.html'};" in capsys.readouterr().err
    # any other folder without config.json is still "not a run folder"
    assert main(["report", str(tmp_path / "demo" / "runs")]) == 2
    assert "not a run folder (no config.json)" in capsys.readouterr().err
