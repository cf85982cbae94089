"""The main job end to end at the reduced size (`unisandbox demo --quick`), as CI runs it."""

from __future__ import annotations

import json
import re

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
