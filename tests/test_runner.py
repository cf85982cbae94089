"""The runner: results, U and gap, resume after kill -9, seeds, safe paths, pairs."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
from PIL import Image
from support import run_cli
from unisandbox.records import Generation
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner
from unisandbox.run.seeds import sample_seed


def config(out: Path, **overrides) -> RunConfig:
    base = dict(model=Component("toy-painter", {"skill": 5}), tasks=(Component("toy-shades", {"n": 10}),),
                judge=Component("toy-pixel"), out=out, batch_size=4)
    base.update(overrides)
    return RunConfig(**base)


def test_eval_writes_results_with_u_and_gap(toy_plugin, tmp_path):
    results = Runner(config(tmp_path / "run"), progress=False).run()
    cells = results["tasks"]["toy-shades"]["levels"]["all"]
    assert cells["normal"]["accuracy"] == 0.5 and cells["normal"]["n"] == 10
    assert cells["think"]["accuracy"] == 1.0
    assert cells["understanding"]["accuracy"] == 1.0
    assert cells["gap"] == {"normal": 0.5, "think": 0.0}
    lo, hi = cells["normal"]["ci95"]
    assert 0.2 < lo < 0.5 < hi < 0.8
    assert set(results["tasks"]["toy-shades"]["levels"]) == {"1", "2", "all"}
    run = tmp_path / "run"
    assert (run / "images" / "toy-shades" / "think" / "3.png").is_file()
    conf = json.loads((run / "config.json").read_text())
    assert conf["plugins"]["toy-unisandbox"] == "0.3"
    assert conf["tasks"]["toy-shades"]["data_sha256"]
    assert conf["judge_identity"] == {"kind": "toy-pixel", "version": 1}
    records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 30  # 10 normal + 10 think + 10 understanding
    think = next(r for r in records if r["mode"] == "think" and r["id"] == "3")
    assert think["think"] == "shade 3" and think["verdict"] == "yes" and think["judge_raw"] == "pixel 30"


def test_seeds_depend_on_sample_not_on_batching(toy_plugin, tmp_path):
    Runner(config(tmp_path / "a", batch_size=1), progress=False).run()
    Runner(config(tmp_path / "b", batch_size=7), progress=False).run()
    for i in range(10):
        a = Image.open(tmp_path / "a/images/toy-shades/normal" / f"{i}.png").getpixel((7, 7))
        b = Image.open(tmp_path / "b/images/toy-shades/normal" / f"{i}.png").getpixel((7, 7))
        assert a == b == sample_seed(0, "toy-shades", str(i), "normal") % 256
    assert sample_seed(0, "t", "1", "normal") != sample_seed(0, "t", "1", "think")
    assert sample_seed(0, "t", "1", "normal") != sample_seed(1, "t", "1", "normal")


def test_hostile_ids_stay_inside_the_run_folder(toy_plugin, tmp_path):
    out = tmp_path / "deep" / "run"
    cfg = config(out, tasks=(Component("toy-shades", {"n": 3, "weird_ids": True}),))
    Runner(cfg, progress=False).run()
    escaped = [p for p in tmp_path.rglob("*.png") if not p.resolve().is_relative_to(out.resolve())]
    assert escaped == []
    assert not (tmp_path / "escape0.png").exists()
    names = sorted(p.name for p in (out / "images/toy-shades/normal").iterdir())
    assert len(names) == 3 and any(n.startswith("escape0-") for n in names)


def test_pairs_score_only_when_both_members_are_right(toy_plugin, tmp_path):
    cfg = config(tmp_path / "run", model=Component("toy-painter", {"skill": 5}),
                 tasks=(Component("toy-shades", {"n": 10, "pairs": True}),))
    results = Runner(cfg, progress=False).run()
    normal = results["tasks"]["toy-shades"]["levels"]["all"]["normal"]
    # pairs (0,1) (2,3) right, (4,5) split, (6,7) (8,9) wrong
    assert normal["n"] == 5 and normal["n_yes"] == 2


def test_rerun_on_a_finished_folder_does_no_work(toy_plugin, tmp_path):
    first = Runner(config(tmp_path / "run"), progress=False).run()
    lines = (tmp_path / "run/samples.jsonl").read_text()
    again = Runner(config(tmp_path / "run"), progress=False).run()
    assert again == first and (tmp_path / "run/samples.jsonl").read_text() == lines


def test_resume_refuses_a_different_configuration(toy_plugin, tmp_path):
    Runner(config(tmp_path / "run"), progress=False).run()
    with pytest.raises(Exception, match=r"different run \(run.seed: 0 -> 3\)"):
        Runner(config(tmp_path / "run", seed=3), progress=False).run()


def test_resume_accepts_what_decides_no_verdict_and_records_it(toy_plugin, tmp_path, monkeypatch):
    """A judge server's new timeout, the batch size, the modes' order: a resume, not a new run."""
    import toy_unisandbox

    def init(self, tolerance: int = 0, timeout: float = 1.0) -> None:
        self.tolerance, self.timeout = tolerance, timeout

    monkeypatch.setattr(toy_unisandbox.PixelJudge, "__init__", init)
    first = Runner(config(tmp_path / "run"), progress=False).run()
    log = (tmp_path / "run/samples.jsonl").read_text()
    messages: list[str] = []
    changed = config(tmp_path / "run", batch_size=3, modes=("think", "normal"),
                     judge=Component("toy-pixel", {"timeout": 30}))
    again = Runner(changed, progress=False, log=messages.append).run()
    assert again["tasks"] == first["tasks"] and (tmp_path / "run/samples.jsonl").read_text() == log
    assert any("run.batch_size: 4 -> 3" in m for m in messages)
    recorded = json.loads((tmp_path / "run/config.json").read_text())["run"]
    assert recorded["batch_size"] == 3 and recorded["modes"] == ["think", "normal"]
    with pytest.raises(Exception, match=r"different run \(run.modes"):
        Runner(config(tmp_path / "run", modes=("normal",)), progress=False).run()
    # a judge argument that may decide verdicts (outside how the judge is reached) must match
    with pytest.raises(Exception, match=r"different run \(run.judge.args.tolerance: 0 -> 3\)"):
        Runner(config(tmp_path / "run", judge=Component("toy-pixel", {"tolerance": 3})), progress=False).run()


def test_errors_are_judged_again_on_resume_and_warned_about(toy_plugin, tmp_path, monkeypatch, capsys):
    import toy_unisandbox
    from unisandbox.records import Verdict

    judge = toy_unisandbox.PixelJudge.judge
    monkeypatch.setattr(toy_unisandbox.PixelJudge, "judge",
                        lambda self, items: [Verdict("error", raw="server down") for _ in items])
    first = Runner(config(tmp_path / "run"), progress=False).run()
    assert first["tasks"]["toy-shades"]["levels"]["all"]["normal"]["n_error"] == 10
    assert "20 of 30 verdicts are errors" in capsys.readouterr().err  # 10 U records are fine
    monkeypatch.setattr(toy_unisandbox.PixelJudge, "judge", judge)
    painted = []
    monkeypatch.setattr(toy_unisandbox.ToyPainter, "generate",
                        lambda self, requests: painted.append(requests) or [])
    again = Runner(config(tmp_path / "run"), progress=False).run()
    cells = again["tasks"]["toy-shades"]["levels"]["all"]
    assert not painted  # the saved images were judged, nothing drawn again
    assert (cells["normal"]["n"], cells["normal"]["n_error"], cells["think"]["accuracy"]) == (10, 0, 1.0)
    assert "verdicts are errors" not in capsys.readouterr().err


def test_a_verdict_that_stays_an_error_adds_no_record_on_rerun(toy_plugin, tmp_path, monkeypatch):
    import toy_unisandbox
    from unisandbox.records import Verdict

    monkeypatch.setattr(toy_unisandbox.PixelJudge, "judge",
                        lambda self, items: [Verdict("error", raw="unreadable") for _ in items])
    Runner(config(tmp_path / "run"), progress=False).run()
    lines = (tmp_path / "run/samples.jsonl").read_text()
    Runner(config(tmp_path / "run"), progress=False).run()
    assert (tmp_path / "run/samples.jsonl").read_text() == lines


def test_a_start_that_recorded_nothing_is_taken_over_by_the_corrected_command(toy_plugin, tmp_path):
    bad = config(tmp_path / "run", model=Component("toy-painter", {"skill": "high"}))
    with pytest.raises(TypeError):  # the model fails at its first batch, after config.json
        Runner(bad, progress=False).run()
    assert not (tmp_path / "run").exists()  # undone: later commands would call it unfinished
    (tmp_path / "kept").mkdir()  # a folder the user made stays, empty
    with pytest.raises(TypeError):
        Runner(config(tmp_path / "kept", model=Component("toy-painter", {"skill": "high"})), progress=False).run()
    assert [p.name for p in (tmp_path / "kept").iterdir()] == [".writing.lock"]
    # stopped in its first batch after images were saved (the judge was running): kept, and
    # the same command resumes it
    import toy_unisandbox

    def stopped(self: object, items: object) -> None:
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(toy_unisandbox.PixelJudge, "judge", stopped)
        with pytest.raises(KeyboardInterrupt):
            Runner(config(tmp_path / "first-batch"), progress=False).run()
    assert (tmp_path / "first-batch/config.json").is_file()
    assert Runner(config(tmp_path / "first-batch"), progress=False).run()["tasks"]
    # killed before its first record (no cleanup ran): the corrected command takes it over
    (tmp_path / "run").mkdir()
    (tmp_path / "run/config.json").write_text(json.dumps(Runner(bad, progress=False).resolved_config()))
    results = Runner(config(tmp_path / "run"), progress=False).run()
    assert results["tasks"]["toy-shades"]["levels"]["all"]["normal"]["n"] == 10
    assert json.loads((tmp_path / "run/config.json").read_text())["run"]["model"]["args"] == {"skill": 5}


def test_kill_9_mid_run_then_resume_gives_identical_results(toy_plugin, tmp_path):
    args = ["eval", "--model", "toy-painter", "--model-arg", "delay=0.15", "--task", "toy-shades",
            "--task-arg", "n=40", "--judge", "toy-pixel", "--batch-size", "3", "--quiet"]
    reference = run_cli(*args, "--out", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr

    exe = Path(sys.executable).parent / "unisandbox"
    run = tmp_path / "killed"
    proc = subprocess.Popen([str(exe), *args, "--out", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = run / "samples.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or log.read_text().count("\n") < 20):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = log.read_text().count("\n")
    assert 0 < partial < 120, "the run should have been killed mid-way"
    resumed = run_cli(*args, "--out", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "results.json").read_text()) == json.loads((tmp_path / "ref/results.json").read_text())

    def essence(folder: Path) -> set[tuple]:
        rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        return {(r["task"], r["mode"], r["id"], r["verdict"], r.get("seed")) for r in rows}

    assert essence(run) == essence(tmp_path / "ref")
    for image in (tmp_path / "ref/images").rglob("*.png"):
        assert (run / image.relative_to(tmp_path / "ref")).read_bytes() == image.read_bytes()


def test_a_resume_under_other_component_versions_is_said_and_recorded(toy_plugin, tmp_path, capsys):
    Runner(config(tmp_path / "run"), progress=False).run()
    path = tmp_path / "run/config.json"
    recorded = json.loads(path.read_text())
    key = next(iter(recorded["specs"]))
    was = recorded["specs"][key]
    path.write_text(json.dumps({**recorded, "specs": {**recorded["specs"], key: "toy-dist 0.0.1"}}))
    capsys.readouterr()
    Runner(config(tmp_path / "run"), progress=False).run()
    assert f"with other versions ({key}: toy-dist 0.0.1 -> {was})" in capsys.readouterr().err
    again = json.loads(path.read_text())
    assert again["specs"][key] == "toy-dist 0.0.1" and again["resumed_with"][0][key] == was
    Runner(config(tmp_path / "run"), progress=False).run()  # said again, recorded once
    assert len(json.loads(path.read_text())["resumed_with"]) == 1


def test_folders_that_hold_no_run_are_not_written_into(toy_plugin, tmp_path):
    from unisandbox.errors import UserError

    Runner(config(tmp_path / "run"), progress=False).run()
    (tmp_path / "run/config.json").unlink()  # its records could be another configuration's
    with pytest.raises(UserError, match=r"holds samples\.jsonl but no config\.json"):
        Runner(config(tmp_path / "run", seed=5), progress=False).run()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"is not empty and holds no run \(notes.txt\)"):
        Runner(config(tmp_path / "mine"), progress=False).run()
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_a_resume_mends_what_a_kill_or_a_hand_left(toy_plugin, tmp_path, monkeypatch, capsys):
    """Long ids are found again (their safe name was made safe a second time: every resume drew
    them again), half-written temporaries go, a record naming no image is drawn again, and a
    corrupt line stops the run before config.json is touched, saying what to do."""
    import toy_unisandbox
    from unisandbox.errors import DataError, UserError

    original = toy_unisandbox.ToyTask.samples
    def long_ids(self: object) -> list:
        return [attrs.evolve(s, id=f"{s.id}-" + "a-rather-long-identifier-" * 4) for s in original(self)]

    monkeypatch.setattr(toy_unisandbox.ToyTask, "samples", long_ids)
    run = tmp_path / "run"
    Runner(config(run), progress=False).run()
    log = run / "samples.jsonl"
    lines = log.read_text().splitlines()
    stale = run / "images/toy-shades/normal/.3.png.abcd1234.tmp"
    stale.write_bytes(b"half")
    capsys.readouterr()
    Runner(config(run), progress=False).run()
    assert log.read_text().splitlines() == lines and not stale.exists()
    assert "gone from the folder" not in capsys.readouterr().err
    records = [json.loads(line) for line in lines]
    first = next(i for i, r in enumerate(records) if r["mode"] == "normal")
    log.write_text("\n".join([*lines, json.dumps({**records[first], "image": None})]) + "\n")
    Runner(config(run), progress=False).run()
    assert len(log.read_text().splitlines()) == len(lines) + 2  # drawn and judged again
    log.write_text("\n".join([*lines, json.dumps({**records[first], "image": 3})]) + "\n")
    with pytest.raises(DataError, match=r"samples.jsonl:\d+: .*image"):
        Runner(config(run), progress=False).run()
    log.write_text("\n".join([lines[0], lines[1][:30], *lines[2:]]) + "\n")
    before = (run / "config.json").read_bytes()
    with pytest.raises(UserError, match=r"samples.jsonl:2: corrupt record .*delete that line"):
        Runner(config(run, batch_size=7), progress=False).run()
    assert (run / "config.json").read_bytes() == before


def test_an_identity_holding_a_tuple_resumes(toy_plugin, tmp_path, monkeypatch):
    """config.json holds a list where the identity had a tuple: compared as it reads back."""
    import toy_unisandbox

    identity = toy_unisandbox.ToyTask.identity
    monkeypatch.setattr(toy_unisandbox.ToyTask, "identity", lambda self: {**identity(self), "sizes": (8, 8)})
    first = Runner(config(tmp_path / "run"), progress=False).run()
    assert Runner(config(tmp_path / "run"), progress=False).run()["tasks"] == first["tasks"]


def test_torn_last_line_is_repaired_on_resume(toy_plugin, tmp_path):
    Runner(config(tmp_path / "run"), progress=False).run()
    log = tmp_path / "run/samples.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])  # torn write
    results = Runner(config(tmp_path / "run"), progress=False).run()
    assert results["tasks"]["toy-shades"]["levels"]["all"]["understanding"]["n"] == 10
    assert all(json.loads(line) for line in log.read_text().splitlines())


@pytest.mark.parametrize(("target", "method", "returns", "needle"), [
    ("ToyPainter", "generate", lambda self, requests: [Image.new("RGB", (8, 8)) for _ in requests],
     r"ToyPainter.generate\(\) returned a Image at position 0; expected Generation"),
    ("ToyPainter", "generate", lambda self, requests: [],
     r"ToyPainter.generate\(\) returned 0 items for 4 inputs"),
    ("ToyPainter", "chat", lambda self, prompts: [3 for _ in prompts],
     r"ToyPainter.chat\(\) returned a int at position 0; expected str"),
    ("PixelJudge", "judge", lambda self, items: [True for _ in items],
     r"PixelJudge.judge\(\) returned a bool at position 0; expected Verdict"),
    ("ToyPainter", "generate", lambda self, requests: [Generation(Image.new("F", (8, 8))) for _ in requests],
     r"ToyPainter.generate\(\) returned an image in mode 'F' at position 0; run folders keep PNGs"),
    ("ToyPainter", "generate", lambda self, requests: [Generation(Image.new("RGB", (0, 0))) for _ in requests],
     r"ToyPainter.generate\(\) returned an empty 0x0 image at position 0"),
    ("ToyPainter", "generate", lambda self, requests: [Generation(Image.new("RGB", (8, 8)), 42) for _ in requests],
     r"ToyPainter.generate\(\) returned a Generation whose think is a int at position 0"),
    ("ToyTask", "image_name", lambda self, sample: "same.png",
     r"task 'toy-shades': samples '0' and '1' would share the image file 'same.png'"),
    ("ToyTask", "samples", lambda self: [attrs.evolve(s, id=i) for i, s in
                                         zip(["a/b", f"a_b-{hashlib.sha256(b'a/b').hexdigest()[:8]}"],
                                             self._samples, strict=False)],
     r"samples 'a/b' and 'a_b-[0-9a-f]{8}' would share the image file"),
    ("ToyTask", "samples", lambda self: [attrs.evolve(s, id="same") for s in self._samples],
     r"ToyTask.samples\(\): the id 'same' is given twice \(position 1\)"),
    ("ToyTask", "samples", lambda self: [attrs.evolve(s, id=i) for i, s in enumerate(self._samples)],
     r"ToyTask.samples\(\): the sample at position 0 has the id 0; ids are non-empty strings"),
    ("ToyTask", "samples", lambda self: [s.to_json() for s in self._samples],
     r"ToyTask.samples\(\) returned a dict at position 0; expected Sample"),
])
def test_a_plugin_returning_the_wrong_thing_is_named_in_one_line(toy_plugin, tmp_path, monkeypatch,
                                                                 target, method, returns, needle):
    import toy_unisandbox
    from unisandbox.protocols.returns import PluginError

    monkeypatch.setattr(getattr(toy_unisandbox, target), method, returns)
    with pytest.raises(PluginError, match=needle):
        Runner(config(tmp_path / "run"), progress=False).run()


def test_a_declared_capability_that_is_not_implemented_says_so(toy_plugin, tmp_path, monkeypatch):
    """Found when the model is built, before a run draws any image."""
    import toy_unisandbox
    from unisandbox.factories import build
    from unisandbox.protocols import CapabilityError, Model
    from unisandbox.registry import get_registry

    monkeypatch.setattr(toy_unisandbox.ToyPainter, "chat", Model.chat)
    with pytest.raises(CapabilityError, match=r"ToyPainter declares 'chat' but does not implement.*\(no chat\(\)\)"):
        build(get_registry().model("toy-painter"), {})
    with pytest.raises(CapabilityError, match="ToyPainter declares 'chat' but does not implement"):
        Runner(config(tmp_path / "run"), progress=False).run()
    assert not (tmp_path / "run/images").exists()


def test_a_factory_returning_the_wrong_kind_is_named(toy_plugin):
    from unisandbox.factories import build
    from unisandbox.protocols.returns import PluginError
    from unisandbox.registry import get_registry

    wrong = attrs.evolve(get_registry().model("toy-painter"), factory=lambda: object())
    with pytest.raises(PluginError, match=r"model 'toy-painter' \(.*\): the factory returned a "
                                          r"object; expected a unisandbox.protocols.Model"):
        build(wrong, {})
    # an identity that is not JSON as it stands (a set: another order in every process)
    import toy_unisandbox

    class SetIdentity(toy_unisandbox.ToyPainter):
        def identity(self) -> dict:
            return {**super().identity(), "parts": {"lm", "denoiser"}}

    with pytest.raises(PluginError, match=r"SetIdentity.identity\(\) holds a set at parts; it must be JSON"):
        build(attrs.evolve(wrong, factory=SetIdentity), {})
    # a TypeError from the factory's own code is its bug (traceback, a note saying whose)
    def compares(n: int = 1) -> object:
        return n > 0

    with pytest.raises(TypeError) as err:
        build(attrs.evolve(wrong, factory=compares), {"n": "abc"})
    assert "raised while building model 'toy-painter'" in " ".join(getattr(err.value, "__notes__", []))

    def passes_on(**kwargs: object) -> object:
        return compares(**kwargs)

    with pytest.raises(TypeError):  # passed on to a function that lacks it: the plugin's to check
        build(attrs.evolve(wrong, factory=passes_on), {"colour": "red"})


def test_a_model_class_without_capabilities_gets_its_specs(toy_plugin, monkeypatch):
    import toy_unisandbox
    from unisandbox.factories import build
    from unisandbox.registry import get_registry

    monkeypatch.setattr(toy_unisandbox.ToyPainter, "capabilities", frozenset())
    spec = get_registry().model("toy-painter")
    assert build(spec, {}).capabilities == spec.capabilities == {"generate", "chat"}


def test_an_exception_inside_a_plugin_says_where_it_happened(toy_plugin, tmp_path, monkeypatch):
    import toy_unisandbox

    def boom(self, requests):
        raise ZeroDivisionError("inside the model")

    monkeypatch.setattr(toy_unisandbox.ToyPainter, "generate", boom)
    with pytest.raises(ZeroDivisionError) as err:
        Runner(config(tmp_path / "run"), progress=False).run()
    notes = getattr(err.value, "__notes__", None)
    if notes is not None:  # Python 3.11+
        assert "in task toy-shades, mode normal, samples 0, 1, 2, 3" in notes[0]
        assert "run the same command to resume" in notes[0]


def test_a_task_class_without_a_name_is_named_by_its_record_and_two_names_for_one_task_are_refused(
        toy_plugin, tmp_path, monkeypatch):
    import toy_unisandbox
    from unisandbox.errors import UserError
    from unisandbox.protocols import Task
    from unisandbox.registry import get_registry
    from unisandbox.specs import TaskSpec

    registry = get_registry()
    registry.records["task"]["toy-again"] = TaskSpec(name="toy-again", factory=toy_unisandbox.ToyTask,
                                                     description="the same class again")
    with pytest.raises(UserError, match=r"two tasks are both named 'toy-shades' \(toy-shades \{\} and "
                                        r"toy-again \{\}\)"):
        Runner(config(tmp_path / "two", tasks=(Component("toy-shades"), Component("toy-again"))),
               registry=registry, progress=False)
    monkeypatch.setattr(toy_unisandbox.ToyTask, "name", Task.name)  # a class that names no task
    Runner(config(tmp_path / "run", tasks=(Component("toy-again"),)), registry=registry, progress=False).run()
    assert (tmp_path / "run/images/toy-again/normal/0.png").is_file()


@pytest.mark.parametrize(("raised", "needle"), [
    (ImportError("No module named 'torchvision'"),
     "model 'toy-painter' (toy-unisandbox 0.3) needs a package that is not installed: No module named"),
    (RuntimeError("weights are damaged"), None),
])
def test_a_factory_that_fails_says_which_component_and_distribution(toy_plugin, tmp_path, monkeypatch,
                                                                     raised, needle):
    import toy_unisandbox
    from unisandbox.errors import UserError

    def fail(self, skill=5, delay=0.0):
        raise raised

    monkeypatch.setattr(toy_unisandbox.ToyPainter, "__init__", fail)
    with pytest.raises(UserError if needle else RuntimeError) as err:
        Runner(config(tmp_path / "run"), progress=False).run()
    if needle:
        assert needle in str(err.value)
    elif hasattr(err.value, "add_note"):  # a plugin's bug keeps its traceback, and says whose it is
        assert err.value.__notes__ == ["unisandbox: raised while building model 'toy-painter' "
                                       "(toy-unisandbox 0.3)"]


@pytest.mark.parametrize(("config_json", "kind"), [({"probe": {"name": "probe-lens"}, "model": {}}, "probe"),
                                                   ({"kind": "score", "run": {}}, "score"),
                                                   ({"anything": 1}, "folder")])
def test_eval_into_a_folder_of_another_kind_is_refused_and_leaves_it_alone(toy_plugin, tmp_path,
                                                                           config_json, kind):
    from unisandbox.errors import UserError

    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config_json))
    with pytest.raises(UserError, match=f"holds a {kind}, not an eval run"):
        Runner(config(folder), progress=False).run()
    assert [p.name for p in folder.iterdir()] == ["config.json"]
    assert json.loads((folder / "config.json").read_text()) == config_json


def test_a_recorded_image_gone_from_the_folder_is_drawn_again_on_resume(toy_plugin, tmp_path):
    first = Runner(config(tmp_path / "run"), progress=False).run()
    image = tmp_path / "run/images/toy-shades/normal/3.png"
    original = image.read_bytes()
    image.unlink()
    lines = len((tmp_path / "run/samples.jsonl").read_text().splitlines())
    messages: list[str] = []
    again = Runner(config(tmp_path / "run"), progress=False, log=messages.append).run()
    assert image.read_bytes() == original  # its own seed: the same picture
    assert again["tasks"] == first["tasks"]
    assert len((tmp_path / "run/samples.jsonl").read_text().splitlines()) == lines + 1
    assert any("toy-shades normal: 1 recorded image(s) are gone" in m for m in messages)


def test_a_second_writer_is_refused_while_a_run_holds_its_folder(toy_plugin, tmp_path, capsys):
    """An eval still going holds the folder: the same command typed to "resume" it is refused
    before it touches anything, and report says the run is still running."""
    from unisandbox.errors import UserError
    from unisandbox.run.store import RunStore

    out = tmp_path / "run"
    Runner(config(out), progress=False).run()
    lines = (out / "samples.jsonl").read_text().splitlines()
    (out / "samples.jsonl").write_text("\n".join(lines[:3]) + "\n")  # as if it were still going
    with RunStore(out).writing():
        with pytest.raises(UserError, match="being written by another process"):
            Runner(config(out), progress=False).run()
        assert len((out / "samples.jsonl").read_text().splitlines()) == 3
        assert run_cli("report", str(out)).returncode == 0
        assert "It is still running." in (out / "report" / "report.md").read_text()
    Runner(config(out), progress=False).run()  # released: the resume goes ahead
    assert len((out / "samples.jsonl").read_text().splitlines()) == len(lines)


def test_a_start_refused_before_it_writes_leaves_no_folder(toy_plugin, tmp_path):
    from unisandbox.errors import UserError

    out = tmp_path / "new"
    with pytest.raises(UserError):
        Runner(config(out, judge=Component("toy-pixel", {"bogus": 1})), progress=False).run()
    assert not out.exists()


def test_a_task_arg_can_be_given_to_one_task():
    from unisandbox.errors import UserError
    from unisandbox.run.config import resolve

    common = dict(config_file=None, model="m", model_args={}, judge="j", judge_args={},
                  out=Path("o"), modes=None, seed=None, batch_size=None, understanding=None,
                  reference_scoring=None)
    config = resolve(tasks=["math-1", "mapping-1"], task_args={"n": 3, "math-1:counts": "1-3"}, **common)
    assert [dict(t.args) for t in config.tasks] == [{"n": 3, "counts": "1-3"}, {"n": 3}]
    with pytest.raises(UserError, match="--task-arg math-2:counts: no task 'math-2' in this run"):
        resolve(tasks=["math-1"], task_args={"math-2:counts": "1-3"}, **common)


def test_an_argument_given_at_its_default_resumes_and_a_changed_one_is_named(toy_plugin, tmp_path):
    from unisandbox.errors import UserError

    Runner(config(tmp_path / "run", tasks=(Component("toy-shades", {}),)), progress=False).run()
    again = config(tmp_path / "run", tasks=(Component("toy-shades", {"n": 10, "pairs": False}),))
    messages: list[str] = []
    Runner(again, progress=False, log=messages.append).run()  # the defaults: the same run
    assert not any("with run." in m for m in messages)  # nothing changed, nothing to record
    # 0 for a default of 0.0 is the same value
    Runner(config(tmp_path / "run", model=Component("toy-painter", {"skill": 5, "delay": 0}),
                  tasks=(Component("toy-shades", {}),)), progress=False).run()
    other = config(tmp_path / "run", tasks=(Component("toy-shades", {"n": 10, "pairs": True}),))
    with pytest.raises(UserError, match=r"run\.tasks\[0\]\.args\.pairs: false -> true"):
        Runner(other, progress=False).run()  # the value it ran with, not "(absent)"
