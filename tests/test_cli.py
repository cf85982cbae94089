"""The CLI: user errors are one clear line and exit 2; --help stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import run_cli

BASE = ["eval", "--model", "toy-painter", "--task", "toy-shades", "--judge", "toy-pixel"]


def assert_user_error(result, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ("seed = 'x'\n", ["run.toml:1", "'seed'", "expected int"]),
        ("out = ' '\n", ["run.toml:1", "'out'", "is empty"]),
        ("out = 'r'\n[model\nname='a'\n", ["run.toml", "invalid TOML"]),
        ("out = 'r'\nmodes = ['normal', 'dream']\n", ["run.toml:2", "'modes'", "dream"]),
        ("out = 'r'\n\n[[tasks]]\nname = 3\n", ["run.toml:4", "tasks[0].name"]),
        ("out = 'r'\ncolour = 'red'\n", ["run.toml:2", "'colour'", "unknown key"]),
        ("out = 'r'\n[judge]\nname = 'toy-pixel'\nargz = {}\n", ["run.toml:4", "judge.argz"]),
    ],
)
def test_malformed_config_file(tmp_path, toml, needles):
    path = tmp_path / "run.toml"
    path.write_text(toml)
    result = run_cli("eval", "--config", str(path), "--model", "m", "--task", "t", "--judge", "j",
                     cwd=tmp_path)
    assert_user_error(result, *needles)


def test_config_file_runs(toy_plugin, tmp_path):
    (tmp_path / "run.toml").write_text(
        "out = 'r'\nmodes = ['think']\nbatch_size = 2\n[model]\nname = 'toy-painter'\n"
        "[[tasks]]\nname = 'toy-shades'\nargs = { n = 4 }\n[judge]\nname = 'toy-pixel'\n")
    result = run_cli("eval", "--config", "run.toml", "--quiet", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"think"' in result.stdout and (tmp_path / "r/images/toy-shades/think/3.png").is_file()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--model-arg", "skill"], ["--model-arg expects key=value"]),
        (["--mode", "normal,dream"], ["unknown mode", "dream"]),
        (["--mode", ""], ["--mode: empty", "or none (understanding alone)"]),
        (["--mode", "none", "--no-understanding"], ["nothing to measure"]),
        (["--mode", "none,normal"], ["none (understanding alone) cannot be combined"]),
        (["--task-arg", "colour=red"], ["task 'toy-shades'", "unknown argument 'colour'", "accepted: n"]),
        (["--batch-size", "0"], ["--batch-size must be at least 1"]),
        (["--seed", "-1"], ["--seed must be between 0 and 2**63 - 1, got -1"]),
        (["--task-arg", "n=3", "--task-arg", "n=true"], ["--task-arg n given twice (3 and true)"]),
    ],
)
def test_malformed_cli_input(toy_plugin, tmp_path, args, needles):
    assert_user_error(run_cli(*BASE, *args, "--out", str(tmp_path / "r")), *needles)


def test_unknown_names_and_missing_options(toy_plugin, tmp_path, capsys):
    assert_user_error(run_cli("eval", "--model", "nope", "--task", "toy-shades", "--judge",
                              "toy-pixel", "--out", str(tmp_path)), "unknown model 'nope'")
    assert_user_error(run_cli("eval", "--model", "toy-painter"), "missing --task, --judge, --out")
    assert_user_error(run_cli("eval", "--bogus"), "No such option")
    # an argument of a named component given as an option: say how to pass it
    from unisandbox.cli.main import main

    code = main(["eval", "--model", "glyph-oracle", "--task=math-1", "--judge", "glyph", "--world",
                 "glyph", "--out", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2 and ("argument of model 'glyph-oracle': --model-arg world=VALUE; of task 'math-1': "
                         "--task-arg world=VALUE.") in err
    assert "Did you mean" not in err
    # an empty --out would be the current folder: the run's files among the user's own
    assert_user_error(run_cli(*BASE, "--out", "", cwd=tmp_path), "'--out': is empty")
    assert_user_error(run_cli("report", str(tmp_path), "--out", " ", cwd=tmp_path), "'--out': is empty")
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # the test plugin's, nothing else


def test_capability_mismatch_is_explained(toy_plugin, plugin_site, tmp_path):
    source = ('from unisandbox.hookspecs import hookimpl\nfrom unisandbox.specs import ModelSpec\n'
              'PLUGIN_API_VERSION = 1\n@hookimpl\ndef register_models(register):\n'
              '    register(ModelSpec(name="mute", factory=dict, description="d", capabilities={"generate"}))\n')
    plugin_site("mute-dist", "1.0", {"mute_mod": source}, {"mute": "mute_mod"})
    result = run_cli("eval", "--model", "mute", "--task", "toy-shades", "--judge", "toy-pixel",
                     "--out", str(tmp_path / "r"))
    assert_user_error(result, "lacks chat", "--no-understanding")


def test_help_does_not_import_torch():
    code = ("import sys\nfrom unisandbox.cli.main import main\n"
            "for argv in (['--help'], ['eval', '--help'], ['plugins', 'list'], ['models', 'list'],\n"
            "             ['models', 'show', 'query-tiny'], ['judges', 'show', 'glyph']):\n"
            "    main(argv)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_command_has_help_that_teaches():
    from unisandbox.cli.main import cli

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name], command
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    for path, command in walk(cli, []):
        assert command.help and len(command.help.strip()) > 10, f"`unisandbox {' '.join(path)}` lacks help"


def test_mode_none_measures_understanding_alone(toy_plugin, tmp_path):
    result = run_cli(*BASE, "--mode", "none", "--out", str(tmp_path / "r"), "--json")
    assert result.returncode == 0, result.stderr
    cells = json.loads(result.stdout)["tasks"]["toy-shades"]["levels"]["all"]
    assert set(cells) - {"gap"} == {"understanding"} and not (tmp_path / "r/images").exists()


def test_mode_none_needs_no_judge_and_resumes_either_way(toy_plugin, tmp_path):
    """U alone draws nothing to judge: --judge may be left out, and a judge named on the
    resume of such a run (or left out of it) decides nothing, so the run resumes."""
    out = str(tmp_path / "r")
    no_judge = [*BASE[:5], "--mode", "none", "--out", out]
    first = run_cli(*no_judge, "--json")
    assert first.returncode == 0, first.stderr
    config = json.loads((tmp_path / "r/config.json").read_text())
    assert config["run"]["judge"] is None and config["judge_identity"] is None
    again = run_cli(*BASE, "--mode", "none", "--out", out, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    report = run_cli("report", out)
    assert report.returncode == 0, report.stderr
    assert "none (no image drawn)" in (tmp_path / "r/report/report.md").read_text()
    # a run of before, which recorded its judge and that judge's identity, still resumes
    config["run"]["judge"], config["judge_identity"] = {"name": "toy-pixel", "args": {}}, {"kind": "x"}
    (tmp_path / "r/config.json").write_text(json.dumps(config))
    lines = (tmp_path / "r/samples.jsonl").read_text().splitlines()
    (tmp_path / "r/samples.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    resumed = run_cli(*no_judge, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == json.loads(first.stdout)
    assert_user_error(run_cli(*no_judge[:5], "--out", str(tmp_path / "g")), "missing --judge")


def test_show_lists_a_components_arguments_and_defaults(toy_plugin):
    shown = run_cli("models", "show", "toy-painter")
    assert shown.returncode == 0, shown.stderr
    assert "--model-arg KEY=VALUE" in shown.stdout and "skill" in shown.stdout
    as_json = json.loads(run_cli("tasks", "show", "math-1", "--json").stdout)
    assert {"name": "n", "default": 100} in as_json["arguments"] and as_json["kind"] == "task"
    judge = json.loads(run_cli("judges", "show", "vlm-openai", "--json").stdout)
    names = [a["name"] for a in judge["arguments"]]
    assert "base_url" in names and "tasks" not in names  # the engine's context is not an argument
    assert_user_error(run_cli("models", "show", "nope"), "unknown model 'nope'")


def test_train_without_a_trainer_names_it_and_points_at_help():
    """TRAINER is named first (not --model), and train's usage errors end with the help hint
    every other command's do."""
    for args in ((), ("--model", "x"), ("--out", "somewhere")):
        result = run_cli("train", *args)
        assert_user_error(result, "Missing argument 'TRAINER'", "Try 'unisandbox train --help' for help.")
        assert "--model" not in result.stderr.splitlines()[-1]
    assert_user_error(run_cli("train", "stars", "--bogus"), "No such option '--bogus'",
                      "Try 'unisandbox train --help' for help.")
    helped = run_cli("train", "--help")
    assert helped.returncode == 0 and helped.stdout.count("-h, --help") == 1


LENS = """
from unisandbox.hookspecs import hookimpl
from unisandbox.specs import TaskSpec
PLUGIN_API_VERSION = 1


def lens(task=None, top_k=5, **task_args):
    raise NotImplementedError


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="toy-lens", factory=lens, analysis=True, description="a probe"))
"""


def test_show_of_a_probe_lists_the_base_tasks_arguments(plugin_site, capsys):
    """A probe's factory takes **kwargs and hands them to its base task(s): show lists them."""
    from unisandbox.cli.main import main

    plugin_site("toy-lens-dist", "1.0", {"toy_lens": LENS}, {"toylens": "toy_lens"})
    assert main(["tasks", "show", "toy-lens"]) == 0
    out = capsys.readouterr().out
    assert "keywords the task's docs list" not in out
    assert "+ the arguments of the base task(s) named by task=, e.g. for math-1: n, seed, split, world" in out
    assert "`unisandbox tasks show math-1` lists them" in out


def test_the_option_hint_reads_the_tasks_of_a_run_toml_and_of_a_probe(tmp_path, capsys):
    from unisandbox.cli.main import main

    (tmp_path / "run.toml").write_text('out = "o"\n[model]\nname = "glyph-oracle"\n[[tasks]]\n'
                                       'name = "math-1"\n[judge]\nname = "glyph"\n')
    assert main(["eval", "--config", str(tmp_path / "run.toml"), "--world", "glyph"]) == 2
    assert "argument of task 'math-1': --task-arg world=VALUE." in capsys.readouterr().err
    assert main(["probe", "--task", "probe-lens", "--task-arg", "task=mapping-1", "--world", "glyph"]) == 2
    assert "argument of task 'mapping-1': --task-arg world=VALUE." in capsys.readouterr().err
    # an argument only some of the run's tasks take: for that task alone
    assert main(["eval", f"--config={tmp_path / 'run.toml'}", "--task", "math-1", "--task", "mapping-1",
                 "--counts", "1-3"]) == 2
    assert "argument of task 'math-1': --task-arg math-1:counts=VALUE." in capsys.readouterr().err


def test_task_scoped_arguments_go_to_their_task_alone():
    from unisandbox.errors import UserError
    from unisandbox.run.config import task_args_by_name

    got = task_args_by_name({"n": 3, "math-1:counts": "1-3"}, ["math-1", "mapping-1"])
    assert got == {"math-1": {"n": 3, "counts": "1-3"}, "mapping-1": {"n": 3}}
    with pytest.raises(UserError, match="no task 'math-2' in this run"):
        task_args_by_name({"math-2:counts": "1-3"}, ["math-1"])


def test_a_task_scoped_argument_wins_whatever_the_order():
    from unisandbox.run.config import task_args_by_name

    for given in ({"math-1:n": 5, "n": 10}, {"n": 10, "math-1:n": 5}):
        assert task_args_by_name(given, ["math-1", "mapping-1"]) == {"math-1": {"n": 5}, "mapping-1": {"n": 10}}
