"""``unisandbox judges check`` and ``judges list`` with the built-in judges."""

from __future__ import annotations

import json

from judges_loopback import ChatServer, Scripted, completion, image_of, prompt_of
from support import run_cli
from unisandbox.cli.judges import check_example
from unisandbox.cli.main import main


def describing(reply_1: str, reply_2: str = "Score: YES"):
    def script(request, n):
        return Scripted(completion(reply_1 if image_of(request) is not None else reply_2))
    return script


def test_check_reports_reachability_verdict_and_latency(capsys):
    with ChatServer(describing("Caption: 3 circles"), model="qwen-vl") as server:
        code = main(["judges", "check", "vlm-openai", "--base-url", server.url,
                     "--judge-arg", "model=qwen-vl"])
        first = server.posts[0]
    out = capsys.readouterr().out
    assert code == 0
    assert f"reachable: {server.url}" in out and "serves qwen-vl" in out
    assert "verdict: yes (expected yes)" in out and "description: 3 circles" in out
    assert "Caption:" in prompt_of(first)
    image = image_of(first)
    assert image is not None and image.size == (384, 384)


def test_check_other_family_and_json(capsys):
    with ChatServer(describing("Object: circle")) as server:
        code = main(["judges", "check", "vlm-openai", "--base-url", server.url,
                     "--judge-arg", "model=toy-vlm", "--family", "mapping", "--json"])
        assert "Object:" in prompt_of(server.posts[0])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "yes" and report["family"] == "mapping"
    assert report["reachable"] is True and report["latency_s"] >= 0
    assert report["identity"]["kind"] == "vlm-openai"


def test_check_undecided_judge_exits_1(capsys):
    with ChatServer(describing("Caption: 3 circles", "I cannot say.")) as server:
        code = main(["judges", "check", "vlm-openai", "--base-url", server.url,
                     "--judge-arg", "model=toy-vlm"])
    captured = capsys.readouterr()
    assert code == 1 and "verdict: error" in captured.out and "I cannot say." in captured.out
    assert "gave no verdict" in captured.err


def test_check_unreachable_exits_2_with_a_clear_message():
    with ChatServer() as server:
        url = server.url  # closed below: nothing listens there any more
    result = run_cli("judges", "check", "vlm-openai", "--base-url", url, "--judge-arg", "model=m")
    assert result.returncode == 2
    assert "cannot reach the judge server" in result.stderr and url in result.stderr
    assert "Traceback" not in result.stderr


def test_check_refuses_judges_that_need_the_model(capsys):
    assert main(["judges", "check", "self"]) == 2
    assert "borrows the model under test" in capsys.readouterr().err


def test_check_bad_arguments_exit_2(capsys):
    assert main(["judges", "check", "vlm-openai", "--judge-arg", "model=m",
                 "--judge-arg", "colour=blue"]) == 2
    assert "unknown argument 'colour'" in capsys.readouterr().err
    assert main(["judges", "check", "vlm-openai"]) == 2  # model is required
    assert "--judge-arg model=" in capsys.readouterr().err
    # what the engine hands a judge is neither a user's argument nor listed as one
    assert main(["judges", "check", "glyph", "--judge-arg", "tasks=math-1"]) == 2
    assert "tasks is given by the engine, not by --judge-arg" in capsys.readouterr().err
    assert main(["judges", "check", "glyph", "--judge-arg", "x=1"]) == 2
    assert "unknown argument 'x'; accepted: none" in capsys.readouterr().err


def test_list_shows_the_builtin_judges(capsys):
    assert main(["judges", "list", "--json"]) == 0
    listed = {j["name"]: j for j in json.loads(capsys.readouterr().out)}
    assert {"vlm-openai", "vlm-local", "self"} <= set(listed)
    assert listed["self"]["requires"] == ["understand"]


def test_check_examples_are_drawn_for_every_family():
    for family in ("math", "mapping", "knowledge"):
        sample, image = check_example(family)
        assert sample.answer and image.size == (384, 384)
        assert len(set(image.getdata())) > 1  # something is drawn


def test_check_the_glyph_judge_on_the_exact_render_of_a_glyph_world_item(capsys):
    for family in ("math", "mapping", "knowledge"):
        assert main(["judges", "check", "glyph", "--family", family, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["verdict"] == "yes" and report["world"] == "glyph"
    # the hand-drawn picture has no structured answer: the glyph judge cannot decide on it
    assert main(["judges", "check", "glyph", "--world", "drawn"]) == 1
    assert "no structured target" in capsys.readouterr().out


def test_check_judges_your_image_against_an_item_of_any_task(tmp_path, capsys):
    from unisandbox.factories import build
    from unisandbox.registry import get_registry
    from unisandbox.world.glyph_draw import render

    task = build(get_registry().task("math-2"), {"world": "glyph", "n": 3})
    second = task.samples()[1]
    render(second.target, size=64).save(tmp_path / "right.png")
    args = ["judges", "check", "glyph", "--task", "math-2", "--task-arg", "world=glyph", "--task-arg", "n=3",
            "--image", str(tmp_path / "right.png")]
    assert main([*args, "--item", second.id, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["task"], report["item"], report["verdict"], report["expected"]) == ("math-2", second.id, "yes", None)
    assert main(args) == 0  # the first item: another answer, a verdict all the same
    assert "math-2 item 1: expected answer" in capsys.readouterr().out
    assert main([*args, "--item", "nope"]) == 2
    assert "has no item 'nope'" in capsys.readouterr().err
    assert main(["judges", "check", "glyph", "--image", str(tmp_path / "right.png")]) == 2
    assert "--task and --image go together" in capsys.readouterr().err


def test_check_json_prints_the_failure_on_stdout_too(capsys):
    """A script reading --json gets an object saying why, with the exit status unchanged."""
    with ChatServer() as server:
        url = server.url  # closed below: nothing listens there any more
    result = run_cli("judges", "check", "vlm-openai", "--base-url", url, "--judge-arg", "model=x",
                     "--json")
    assert result.returncode == 2 and "cannot reach the judge server" in result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["reachable"] is False and report["judge"] == "vlm-openai"
    assert "cannot reach the judge server" in report["error"] and url in report["error"]
    # a verdict-less reply (exit 1) and a good one say ok too
    with ChatServer(describing("Caption: 3 circles", "I cannot say.")) as server:
        code = main(["judges", "check", "vlm-openai", "--base-url", server.url,
                     "--judge-arg", "model=toy-vlm", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["ok"] is False and "gave no verdict" in report["error"]
    with ChatServer(describing("Caption: 3 circles")) as server:
        assert main(["judges", "check", "vlm-openai", "--base-url", server.url,
                     "--judge-arg", "model=toy-vlm", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and "error" not in report
