"""VLM judges inside real runs: eval and score against a loopback server, the verdict cache,
``evaluation_results.csv`` in the original scorer's columns, and the API key kept secret."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from judges_loopback import CASES, ChatServer, Scripted, fake_vlm, scene_image
from support import FIXTURES, run_cli
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner
from unisandbox.run.scoring import score_images

SECRET = "sk-unisandbox-TEST-7f3c9e1d2b"


@pytest.fixture
def jt_plugin(plugin_site):
    """fixtures/judges_toy.py installed as dist ``judges-toy`` (task jt-scenes, model jt-painter)."""
    source = (FIXTURES / "judges_toy.py").read_text()
    return plugin_site("judges-toy", "0.1", {"judges_toy": source}, {"jt": "judges_toy"})


class KeyServer(ChatServer):
    """Answers 401 unless the request carries ``Authorization: Bearer SECRET``."""

    def _record(self, path, headers, body):
        n = super()._record(path, headers, body)
        self.authorized = getattr(self, "authorized", True) and headers.get("Authorization") == f"Bearer {SECRET}"
        return n


def write_scenes(folder: Path, family: str, pairs: bool = False, skip: tuple[str, ...] = ()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (scene, _, _) in enumerate(CASES[family]):
        sid = f"{i // 2}_{'AB'[i % 2]}" if pairs else str(i)
        if sid not in skip:
            scene_image(scene).save(folder / f"{sid}.png")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def judge_args(server: ChatServer, **extra) -> dict:
    return {"model": "toy-vlm", "base_url": server.url, "backoff": 0.01, **extra}


def test_score_writes_original_math_columns(jt_plugin, tmp_path):
    write_scenes(tmp_path / "imgs", "math", skip=("3",))
    with ChatServer() as server:
        results = score_images(tmp_path / "imgs", task_name="jt-scenes", task_args={"family": "math"},
                               judge_name="vlm-openai", judge_args=judge_args(server), progress=False)
    columns, rows = read_csv(tmp_path / "imgs" / "score" / "evaluation_results.csv")
    assert columns == ["ID", "Question", "Answer", "Image_Path", "Result", "Score", "Analysis"]
    assert [r["ID"] for r in rows] == [str(i) for i in range(len(CASES["math"]))]
    expected = [c[2].upper() for c in CASES["math"]]
    expected[3] = "IMAGE_NOT_FOUND"
    assert [r["Result"] for r in rows] == expected
    assert [r["Score"] for r in rows] == ["1" if e == "YES" else "0" for e in expected]
    assert rows[0]["Answer"] == "3 circles" and rows[0]["Question"].startswith("Draw 3 circles")
    assert Path(rows[0]["Image_Path"]).is_file() and "Score: YES" in rows[0]["Analysis"]
    assert rows[3]["Analysis"] == "Image file not found"
    all_ = results["tasks"]["jt-scenes"]["levels"]["all"]["normal"]
    assert all_["n"] == len(CASES["math"])


def test_score_writes_original_mapping_pair_columns(jt_plugin, tmp_path):
    write_scenes(tmp_path / "imgs", "mapping", pairs=True)
    with ChatServer() as server:
        score_images(tmp_path / "imgs", task_name="jt-scenes",
                     task_args={"family": "mapping", "pairs": True}, judge_name="vlm-openai",
                     judge_args=judge_args(server), progress=False)
    columns, rows = read_csv(tmp_path / "imgs" / "score" / "evaluation_results.csv")
    assert columns == ["ID", "Question_A", "Answer_A", "Image_A_Path", "A_Result", "A_Score",
                       "A_Analysis", "Question_B", "Answer_B", "Image_B_Path", "B_Result",
                       "B_Score", "B_Analysis", "Both_Correct", "Final_Score"]
    # CASES["mapping"]: (yes, no) then (no, yes): no pair is right
    assert [(r["ID"], r["A_Result"], r["B_Result"], r["Both_Correct"], r["Final_Score"]) for r in rows] == [
        ("0", "YES", "NO", "False", "0"), ("1", "NO", "YES", "False", "0")]
    assert rows[0]["Image_B_Path"].endswith("0_B.png")


def test_score_writes_original_knowledge_columns_with_caption(jt_plugin, tmp_path):
    write_scenes(tmp_path / "imgs", "knowledge")
    with ChatServer() as server:
        score_images(tmp_path / "imgs", task_name="jt-scenes", task_args={"family": "knowledge"},
                     judge_name="vlm-openai", judge_args=judge_args(server), progress=False)
    columns, rows = read_csv(tmp_path / "imgs" / "score" / "evaluation_results.csv")
    assert columns == ["ID", "Question", "Answer", "Image_Path", "Caption", "Result", "Score", "Analysis"]
    assert [r["Caption"] for r in rows] == ["Fruit: apple", "Reject", "Flower: rose", "Fruit: peaches"]
    assert [r["Result"] for r in rows] == ["YES", "NO", "NO", "YES"]


def test_errors_are_error_in_csv_and_left_out_unless_reference_scoring(jt_plugin, tmp_path):
    write_scenes(tmp_path / "imgs", "math")
    with ChatServer(lambda r, n: Scripted("busy", status=500)) as server:
        default = score_images(tmp_path / "imgs", task_name="jt-scenes", task_args={},
                               judge_name="vlm-openai", judge_args=judge_args(server, retries=1),
                               progress=False, out=tmp_path / "a")
        reference = score_images(tmp_path / "imgs", task_name="jt-scenes", task_args={},
                                 judge_name="vlm-openai", judge_args=judge_args(server, retries=1),
                                 progress=False, out=tmp_path / "b", reference_scoring=True)
    _, rows = read_csv(tmp_path / "a" / "evaluation_results.csv")
    assert {r["Result"] for r in rows} == {"ERROR"} and {r["Score"] for r in rows} == {"0"}
    cell = default["tasks"]["jt-scenes"]["levels"]["all"]["normal"]
    assert cell["n_error"] == len(CASES["math"])
    ref = reference["tasks"]["jt-scenes"]["levels"]["all"]["normal"]
    assert ref["accuracy"] == 0.0 and ref["n"] == len(CASES["math"])


def test_rescoring_a_run_with_the_same_judge_makes_no_calls(jt_plugin, tmp_path):
    run = tmp_path / "run"
    with ChatServer() as server:
        config = RunConfig(model=Component("jt-painter"), tasks=(Component("jt-scenes", {"repeat": 2}),),
                           judge=Component("vlm-openai", judge_args(server)), out=run,
                           modes=("normal",), understanding=False, batch_size=4)
        results = Runner(config, progress=False).run()
        first_calls = len(server.posts)
        cell = results["tasks"]["jt-scenes"]["levels"]["all"]["normal"]
        # the painter draws what is asked; the scenes say which of them should pass
        assert cell["n"] == 12 and cell["accuracy"] == pytest.approx(8 / 12)
        assert first_calls > 0
        run_cache = (run / "judge_cache.jsonl").read_bytes()
        score_images(run, task_name="jt-scenes", task_args={"repeat": 2}, judge_name="vlm-openai",
                     judge_args=judge_args(server), progress=False)
        assert len(server.posts) == first_calls  # every verdict came from the run's cache
        assert (run / "judge_cache.jsonl").read_bytes() == run_cache  # read, never written
        # another judge model: a different identity, so the cache does not apply
        score_images(run, task_name="jt-scenes", task_args={"repeat": 2}, judge_name="vlm-openai",
                     judge_args={**judge_args(server), "model": "other"}, progress=False,
                     out=tmp_path / "other")
        assert len(server.posts) > first_calls
    records = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in records}
    assert by_id["0"]["verdict"] == "yes" and by_id["1"]["verdict"] == "no"
    conf = json.loads((run / "config.json").read_text())
    assert conf["judge_identity"]["kind"] == "vlm-openai"
    assert set(conf["judge_identity"]["templates"]) == {"math"}  # the run's families only


def test_task_brings_its_own_template(jt_plugin, tmp_path):
    template = tmp_path / "custom.toml"
    template.write_text('family = "jt-custom"\nversion = "7"\nlabel = "Caption"\n'
                        'short_circuit = ["Error"]\n'
                        'describe = "Count the shapes. Reply Caption: <n> <shapes>"\n'
                        'compare = "Caption: {description}\\nExpected answer: {expected}\\n'
                        'Say Score: YES or Score: NO"\n')
    write_scenes(tmp_path / "imgs", "math")
    with ChatServer() as server:
        results = score_images(tmp_path / "imgs", task_name="jt-scenes",
                               task_args={"template": str(template)}, judge_name="vlm-openai",
                               judge_args=judge_args(server), progress=False)
        assert "Count the shapes." in server.posts[0]["messages"][0]["content"][1]["text"]
    cell = results["tasks"]["jt-scenes"]["levels"]["all"]["normal"]
    assert cell["n"] == len(CASES["math"]) and cell["n_error"] == 0
    conf = json.loads((tmp_path / "imgs" / "score" / "config.json").read_text())
    assert conf["judge_identity"]["templates"] == {"jt-custom": {
        "version": "7", "sha256": conf["judge_identity"]["templates"]["jt-custom"]["sha256"]}}


def test_api_key_never_reaches_logs_or_run_files(jt_plugin, tmp_path, monkeypatch, capfd, caplog):
    monkeypatch.setenv("JT_KEY", SECRET)
    run, scored = tmp_path / "run", tmp_path / "run" / "scored"
    seen_headers, echoed = [], []

    def script(request, n):
        # a careless server echoing the key in its error text, on the first chat call (the
        # runner's reachability GET /models comes before it)
        if not echoed:
            echoed.append(n)
            return Scripted({"error": f"upstream said no to Bearer {SECRET}"}, status=500)
        return fake_vlm(request, n)

    with KeyServer(script) as server:
        args = judge_args(server, api_key_env="JT_KEY", retries=0)
        config = RunConfig(model=Component("jt-painter"), tasks=(Component("jt-scenes"),),
                           judge=Component("vlm-openai", args), out=run, modes=("normal",),
                           understanding=True, batch_size=4)
        Runner(config, progress=True).run()
        assert server.authorized  # the key was sent, as a bearer token
        seen_headers = [h.get("Authorization") for _, h, _ in server.requests]
        # the first item's stage 1 got the echo: an error verdict with the key masked
        records = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
        errors = [r for r in records if r["verdict"] == "error"]
        assert len(errors) == 1 and "Bearer ***" in errors[0]["judge_raw"]
        # score the run again through the CLI, as a user would (a subprocess, its own logs)
        cli = run_cli("score", str(run), "--task", "jt-scenes", "--judge", "vlm-openai",
                      "--judge-arg", f"model={args['model']}", "--judge-arg", f"base_url={server.url}",
                      "--judge-arg", "api_key_env=JT_KEY", "--out", str(scored),
                      env={"JT_KEY": SECRET})
        assert cli.returncode == 0, cli.stderr
        check = run_cli("judges", "check", "vlm-openai", "--base-url", server.url,
                        "--judge-arg", "model=toy-vlm", "--judge-arg", "api_key_env=JT_KEY",
                        env={"JT_KEY": SECRET})
        assert check.returncode in (0, 1), check.stderr
    assert seen_headers and all(h == f"Bearer {SECRET}" for h in seen_headers)
    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, cli.stdout, cli.stderr, check.stdout, check.stderr]
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {"config.json", "samples.jsonl", "judge_cache.jsonl", "results.json",
            "evaluation_results.csv"} <= {p.name for p in files}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    for text in texts:
        assert SECRET not in text
    conf = json.loads((run / "config.json").read_text())
    assert conf["run"]["judge"]["args"]["api_key_env"] == "JT_KEY"  # the name, not the value


def test_a_wrong_key_is_an_error_verdict_and_a_clear_check_failure(jt_plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("JT_KEY", "sk-wrong")

    def script(request, n):
        return Scripted({"error": "invalid api key"}, status=401)

    write_scenes(tmp_path / "imgs", "math")
    with ChatServer(script) as server:
        results = score_images(tmp_path / "imgs", task_name="jt-scenes", task_args={},
                               judge_name="vlm-openai",
                               judge_args=judge_args(server, api_key_env="JT_KEY"), progress=False)
    assert results["tasks"]["jt-scenes"]["levels"]["all"]["normal"]["n_error"] == len(CASES["math"])


def test_an_unreachable_judge_server_stops_the_run_before_it_draws(jt_plugin, tmp_path):
    import socket

    from unisandbox.errors import UserError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = {"model": "toy-vlm", "base_url": f"http://127.0.0.1:{port}/v1", "retries": 0}
    config = RunConfig(model=Component("jt-painter"), tasks=(Component("jt-scenes"),),
                       judge=Component("vlm-openai", args), out=tmp_path / "run", modes=("normal",),
                       understanding=False, batch_size=4)
    with pytest.raises(UserError, match="cannot reach the judge server"):
        Runner(config, progress=False).run()
    assert not (tmp_path / "run/images").exists()
    # score asks too, before its first call: not every image's retries spent, then exit 0
    write_scenes(tmp_path / "imgs", "math")
    with pytest.raises(UserError, match="cannot reach the judge server"):
        score_images(tmp_path / "imgs", task_name="jt-scenes", task_args={"family": "math"},
                     judge_name="vlm-openai", judge_args=args, progress=False)
    assert not (tmp_path / "imgs/score/results.json").exists()
