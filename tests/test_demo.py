"""The main job end to end at the reduced size (`unisandbox demo --quick`), as CI runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import run_cli

pytest.importorskip("unisandbox_query")
pytest.importorskip("unisandbox_stars")
pytest.importorskip("unisandbox_probes")


def test_quick_demo_runs_every_stage_and_writes_a_self_contained_report(tmp_path, monkeypatch):
    monkeypatch.setenv("UNISANDBOX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    result = run_cli("demo", "--quick", "--quiet", "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) >= {"pretrain", "base", "inject", "knowledge", "stars", "ablation",
                            "probes", "report", "total"}
    for run in ("base", "inject", "stars", "stars_nofilter"):
        results = json.loads((out / "runs" / run / "results.json").read_text())
        assert results["tasks"], run
    findings = json.loads((out / "findings.json").read_text())
    assert len(findings["findings"] if isinstance(findings, dict) else findings) == 6
    html = (out / "report" / "report.html").read_text()
    assert "Findings" in html or "findings" in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert "[1/8] pretrain" in result.stderr and "about" in result.stderr
    assert "Reasoning gap" in result.stdout and "Reasoning gap" not in result.stderr
    # a second run resumes: every stage is skipped
    again = run_cli("demo", "--quick", "--quiet", "--out", str(out), timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("done earlier, skipped") == 8
    resumed = json.loads((out / "timings.json").read_text())
    assert resumed == timings  # the total is recomputed from the stages, not added to
    assert timings["total"] == round(sum(v for k, v in timings.items() if k != "total"), 1)
    # other options on the same folder would reuse the quick stages as if they were theirs
    other = run_cli("demo", "--quick", "--seed", "7", "--quiet", "--out", str(out), timeout=300)
    assert other.returncode == 2 and "holds a demo run with other options (options.seed: 0 -> 7)" in other.stderr
    assert f"resume it with `unisandbox demo --quick --out {out}`" in other.stderr


def test_a_damaged_or_foreign_demo_folder_is_a_one_line_error(tmp_path):
    from unisandbox.demo import Demo
    from unisandbox.errors import UserError

    out = tmp_path / "demo"
    out.mkdir()
    demo = Demo(out, quick=True, log=lambda m: None, progress=False)
    (out / "demo.json").write_text(json.dumps({"options": demo.options()}))
    (out / "timings.json").write_text('{"pretrain": 1')
    with pytest.raises(UserError, match=r"timings\.json"):
        demo.run()
    # other options on a folder where no stage finished: taken over, not refused
    (out / "demo.json").write_text(json.dumps({"options": {**demo.options(), "seed": 7}}))
    demo._check_folder()
    assert json.loads((out / "demo.json").read_text()) == {"options": demo.options()}
    (out / "demo.json").unlink()
    (out / ".done").mkdir()
    (out / ".done" / "pretrain").write_text("1.0\n")
    with pytest.raises(UserError, match="did not record its options"):
        demo.run()


def _prepared(out: Path) -> Path:
    """A demo folder whose stages up to the probes are done, with small constructed runs: the
    report stage alone runs (seconds, not the minutes of a real demo)."""
    from unisandbox.demo import STAGES, Demo
    from unisandbox.report.stats import Cell

    demo = Demo(out, quick=True, log=lambda m: None, progress=False)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo.json").write_text(json.dumps({"options": demo.options()}))
    (out / ".done").mkdir()
    for stage in STAGES[:-1]:
        (out / ".done" / stage).write_text("1.0\n")
    cells = {"understanding": Cell.of(19, 20).to_json(), "normal": Cell.of(2, 20).to_json(),
             "think": Cell.of(15, 20).to_json()}
    for run, task, family in (("base", "math-1", "math"), ("inject", "knowledge-forward", "knowledge")):
        folder = out / "runs" / run
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"run": {"model": {"name": "m", "args": {}},
                                                                "tasks": [{"name": task}]}}))
        (folder / "results.json").write_text(json.dumps({"modes": ["normal", "think"], "tasks": {
            task: {"family": family, "unit": "item", "chance": 0.2, "levels": {"all": cells}}}}))
    return out


def test_quick_demo_defaults_to_its_own_folder_so_the_full_demo_can_follow(tmp_path, monkeypatch):
    """README order: `demo --quick`, then `make demo` (runs/demo): the quick one must not
    take runs/demo, or the full one is refused ("holds a demo run with other options")."""
    from unisandbox.cli.main import main
    from unisandbox.demo import Demo

    used = []

    def run(self):
        used.append((self.out, self.quick))
        return {"out": str(self.out), "timings": {}, "report": "r", "findings": None}

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Demo, "run", run)
    assert main(["demo", "--quick", "--quiet"]) == 0
    assert main(["demo", "--quiet"]) == 0
    assert main(["demo", "--quick", "--quiet", "--out", "elsewhere"]) == 0
    assert used == [(Path("runs/demo-quick"), True), (Path("runs/demo"), False),
                    (Path("elsewhere"), True)]


def test_the_findings_table_goes_to_stdout_and_into_json(tmp_path, capsys):
    """The demo's result is its findings table: on stdout, as `unisandbox findings` prints it
    (stage lines stay on stderr); --json carries the verdicts in the findings --json shape."""
    from unisandbox.cli.main import main

    out = _prepared(tmp_path / "demo")
    assert main(["demo", "--quick", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "Reasoning gap" in printed.out and "NOT MEASURED" in printed.out
    assert "Reasoning gap" not in printed.err and "[8/8] report" in printed.err
    assert "[8/8] report" not in printed.out and "report: " in printed.out
    assert main(["demo", "--quick", "--quiet", "--out", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["findings"] == json.loads((out / "findings.json").read_text())
    assert [f["verdict"] for f in got["findings"]["findings"]][:2] == ["not measured"] * 2
    assert set(got) == {"out", "report", "timings", "findings"}


def test_time_left_follows_the_pace_of_this_machine(tmp_path, monkeypatch):
    """On a machine 5x slower than the estimates, the estimate of the time left is 5x too,
    once a stage has been timed (a fixed figure said "1:19 left" of a 6:48 run)."""
    import unisandbox.demo as demo_module
    from unisandbox.demo import QUICK, STAGES, Demo, _fmt, time_left

    assert time_left(100, 0, 0) == 100  # nothing timed yet: the figures as they are
    assert time_left(100, 20, 60) == 300
    assert time_left(100, 20, 10) == 50
    assert time_left(100, 25, 1) == 50  # a stage resumed nearly done: at most twice as fast
    assert time_left(100, 10, 1000) == 1000  # one slow start: at most ten times as slow

    class Clock:
        now = 0.0

        @classmethod
        def perf_counter(cls) -> float:
            return cls.now

    monkeypatch.setattr(demo_module, "time", Clock)
    lines: list[str] = []
    demo = Demo(tmp_path / "demo", quick=True, log=lines.append, progress=False)
    for stage in STAGES:
        def slow(stage=stage):
            Clock.now += 5 * QUICK.seconds[stage]
        monkeypatch.setattr(demo, f"stage_{stage}", slow)
    demo.run()
    starts = [line for line in lines if line.startswith("[")]
    assert starts[0].endswith(f"about {_fmt(sum(QUICK.seconds.values()))} left)")
    for i, line in enumerate(starts[1:], 1):
        assert line.endswith(f"about {_fmt(5 * sum(QUICK.seconds[s] for s in STAGES[i:]))} left)"), line
