"""``unisandbox probe`` with a third-party analysis task: the protocol, the checks, the folder."""

from __future__ import annotations

import json

import pytest
from unisandbox.cli.main import main

PLUGIN = '''
import json
from unisandbox.hookspecs import hookimpl
from unisandbox.protocols import AnalysisTask
from unisandbox.specs import TaskSpec

PLUGIN_API_VERSION = 1


class AskTwice(AnalysisTask):
    """Asks the model one question per mode and records the replies."""

    name = "ask-twice"

    def __init__(self, question="What is 2 + 3?"):
        self.question = question

    def analyze(self, model, modes, out_dir, progress):
        if not self.question.endswith("?"):
            from unisandbox.errors import UserError
            raise UserError("the question must end with '?'")
        replies = {m: model.chat([self.question])[0] for m in modes}
        progress("ask", 1, 1)
        (out_dir / "probe.json").write_text(json.dumps({"replies": replies}))
        (out_dir / "section.md").write_text("# ask-twice\\n")
        return {"replies": replies, "table": {"headers": ["mode", "reply"],
                                              "rows": [[m, r] for m, r in replies.items()]}}


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="ask-twice", factory=AskTwice, analysis=True, requires={"chat"},
                      description="ask the model a question"))
    register(TaskSpec(name="needs-states", factory=AskTwice, analysis=True,
                      requires={"query_states"}, description="needs hidden states"))
    register(TaskSpec(name="not-a-probe", factory=lambda: object(), analysis=True,
                      description="a factory returning the wrong thing"))
    register(TaskSpec(name="no-model", factory=NoModel, analysis=True,
                      description="reads no model"))
    register(TaskSpec(name="writes-nothing", factory=Silent, analysis=True, description="no files"))
    register(TaskSpec(name="lists", factory=Lists, analysis=True, description="returns a list"))
    register(TaskSpec(name="unflagged", factory=NoModel, description="analysis=True forgotten"))


class NoModel(AnalysisTask):
    name = "no-model"

    def analyze(self, model, modes, out_dir, progress):
        (out_dir / "section.md").write_text("# no model\\n")
        return {"model_given": model is not None}


class Silent(AnalysisTask):
    def analyze(self, model, modes, out_dir, progress):
        (out_dir / "probe.json").write_text("{}")
        return {}


class Lists(NoModel):
    def analyze(self, model, modes, out_dir, progress):
        super().analyze(model, modes, out_dir, progress)
        return [1, 2]
'''


@pytest.fixture
def ask_plugin(plugin_site):
    return plugin_site("unisandbox-ask", "0.2", {"unisandbox_ask": PLUGIN}, {"ask": "unisandbox_ask"})


def test_probe_runs_an_analysis_task_and_records_its_config(ask_plugin, tmp_path, capsys):
    out = tmp_path / "ask"
    assert main(["probe", "--model", "glyph-oracle", "--task", "ask-twice", "--mode", "normal",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mode    reply" in printed and "normal  5" in printed
    assert json.loads((out / "probe.json").read_text()) == {"replies": {"normal": "5"}}
    config = json.loads((out / "config.json").read_text())
    assert config["probe"] == {"name": "ask-twice", "args": {}} and config["modes"] == ["normal"]
    assert config["specs"]["task:ask-twice"] == "unisandbox-ask 0.2"
    # the same configuration again: recomputed into the same folder
    assert main(["probe", "--model", "glyph-oracle", "--task", "ask-twice", "--mode", "normal",
                 "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["replies"] == {"normal": "5"}
    # another configuration: refused
    assert main(["probe", "--model", "glyph-oracle", "--task", "ask-twice", "--out", str(out)]) == 2
    assert "holds a different probe (modes: " in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "glyph-oracle", "--task", "needs-states"], "'glyph-oracle' lacks query_states"),
    (["--task", "ask-twice"], "reads a model (chat): give --model"),
    (["--model", "glyph-oracle", "--task", "not-a-probe"], "expected a unisandbox.protocols.Task"),
    (["--model", "glyph-oracle", "--task", "math-1"], "not a probe"),
    (["--model", "glyph-oracle", "--task", "ask-twice", "--task-arg", "colour=red"],
     "unknown argument 'colour'"),
])
def test_probe_checks_before_loading_anything(ask_plugin, tmp_path, capsys, args, message):
    assert main(["probe", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("task", "message"), [
    ("writes-nothing", "Silent.analyze() (unisandbox-ask 0.2) wrote no section.md or section.html"),
    ("lists", "Lists.analyze() (unisandbox-ask 0.2) returned a list; expected a dict"),
])
def test_a_probe_that_breaks_its_contract_is_named(ask_plugin, tmp_path, capsys, task, message):
    assert main(["probe", "--task", task, "--out", str(tmp_path / "p")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p/config.json").exists()


def test_eval_refuses_a_probe(ask_plugin, tmp_path, capsys):
    assert main(["eval", "--model", "glyph-oracle", "--task", "ask-twice", "--judge", "glyph",
                 "--out", str(tmp_path / "run")]) == 2
    assert "run it with `unisandbox probe`" in capsys.readouterr().err
    # a probe registered without analysis=True would be run as an empty task
    assert main(["eval", "--model", "glyph-oracle", "--task", "unflagged", "--judge", "glyph",
                 "--out", str(tmp_path / "run")]) == 2
    assert "registered without analysis=True" in capsys.readouterr().err


def test_a_failed_probe_does_not_block_the_corrected_command(ask_plugin, tmp_path, capsys):
    out = tmp_path / "ask"
    assert main(["probe", "--model", "glyph-oracle", "--task", "ask-twice", "--task-arg",
                 "question=What is 2 + 3", "--out", str(out), "--quiet"]) == 2
    assert "must end with" in capsys.readouterr().err and not (out / "config.json").exists()
    assert main(["probe", "--model", "glyph-oracle", "--task", "ask-twice", "--mode", "normal",
                 "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["probe"]["args"] == {}


def test_a_probe_that_reads_no_model_ignores_model_and_says_so(ask_plugin, tmp_path, capsys):
    out = tmp_path / "nm"
    assert main(["probe", "--model", "glyph-oracle", "--task", "no-model", "--out", str(out),
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"model_given": False}
    assert "reads no model; --model glyph-oracle ignored" in captured.err
    assert json.loads((out / "config.json").read_text())["model"] is None
