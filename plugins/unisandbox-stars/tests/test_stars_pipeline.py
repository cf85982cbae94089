"""``stars``: generation only, artifacts per stage, the filter, resumption after crashes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from unisandbox.errors import UserError
from unisandbox.factories import build
from unisandbox.registry import get_registry
from unisandbox.run.store import JsonlLog, save_png
from unisandbox.world.glyph_draw import render
from unisandbox_stars.pipeline import Internalization, Phase, StarsRun, sentences, split_steps
from unisandbox_stars.stars import StarsTrainer

FAST = {"tasks": "math-1,math-2", "n": 3, "k": 2, "steps": 6, "batch_size": 4, "progress": False}


def snapshot(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def identical(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def lines(path: Path) -> list[dict]:
    return list(JsonlLog(path).read())


def test_stars_trains_generation_only_and_writes_every_stage(tiny_model, tmp_path: Path) -> None:
    understanding = snapshot(tiny_model.trainable_parameters("understanding"))
    generation = snapshot(tiny_model.trainable_parameters("generation"))
    out = tmp_path / "stars"
    result = StarsTrainer(**FAST, no_filter=True, audit_judge="glyph").train(tiny_model, out)

    assert identical(snapshot(tiny_model.trainable_parameters("understanding")), understanding)
    assert not identical(snapshot(tiny_model.trainable_parameters("generation")), generation)
    assert result.checkpoint == out / "model" and (out / "model" / "model.safetensors").is_file()
    assert result.metrics["phases"] == 2 and result.metrics["train_steps"] == 6  # 3 + 3
    for level in (1, 2):
        phase = out / f"round1-level{level}"
        candidates = lines(phase / "candidates.jsonl")
        assert len(candidates) == 6 and {c["level"] for c in candidates} == {level}
        assert all((phase / c["image"]).is_file() and c["think"] is not None for c in candidates)
        assert {(c["id"], c["k"]) for c in candidates} == {(i, k) for i in "123" for k in (0, 1)}
        # no_filter keeps everything; the audit judge (glyph) still says how right it was
        verdicts = lines(phase / "verdicts.jsonl")
        assert all(v["accepted"] and v["audit"] in ("yes", "no", "error") for v in verdicts)
        assert len(lines(phase / "accepted.jsonl")) == 6
        acceptance = json.loads((phase / "acceptance.json").read_text())
        assert acceptance["all"]["rate"] == 1.0 and f"math-{level}" in acceptance["by_task"]
        for stage in (1, 2, 3):
            assert (phase / f"stage{stage}.done").is_file()
        assert (phase / "train" / "model" / "model.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["phases"]) == ["round1-level1", "round1-level2"]
    # the curriculum replays: level 2 trains on level 1's accepted candidates too
    assert [p["train"]["examples"] for p in summary["phases"].values()] == [6, 12]
    # the run's prompts are the TRAIN split's
    train = build(get_registry().task("math-1"), {"split": "train", "world": "glyph", "n": 3})
    assert {c["prompt"] for c in lines(out / "round1-level1" / "candidates.jsonl")} == \
        {s.prompt for s in train.samples()}

    # the final checkpoint loads back to exactly the trained model
    from unisandbox_query.model import QueryModel

    loaded = QueryModel.from_pretrained(result.checkpoint)
    assert identical(snapshot(loaded.trainable_parameters("generation")),
                     snapshot(tiny_model.trainable_parameters("generation")))
    assert identical(snapshot(loaded.trainable_parameters("understanding")), understanding)


def test_filter_keeps_exactly_what_the_judge_accepts(tiny_model, tmp_path: Path) -> None:
    """Stage II on candidate images we control: right renders are kept, near misses not."""
    trainer = StarsTrainer(tasks="math-1,mapping-1", n=2, k=2, judge="glyph", steps=100,
                           max_epochs=1, batch_size=2, order="mixed", progress=False)
    run = StarsRun(trainer, tiny_model, tmp_path)
    (phase,) = run.phases()
    folder = tmp_path / phase.name
    records = []
    for task in run.tasks:
        for s in task.samples():
            for k in (0, 1):
                target = dict(s.target)
                if k == 1:  # a near miss: another colour
                    target["colour"] = "blue" if target.get("colour") != "blue" else "red"
                target.setdefault("count", 1)
                image = f"images/{task.name}/{s.id}-k{k}.png"
                save_png(folder / image, render(target))
                records.append({"task": task.name, "id": s.id, "k": k, "level": s.level,
                                "prompt": s.prompt, "seed": 0, "think": "", "image": image})
    JsonlLog(folder / "candidates.jsonl").append(records)
    (folder / "stage1.done").write_text("{}")

    acceptance = run.stage2(phase)
    accepted = lines(folder / "accepted.jsonl")
    assert sorted((a["task"], a["id"], a["k"]) for a in accepted) == \
        sorted((r["task"], r["id"], 0) for r in records if r["k"] == 0)
    assert acceptance["all"] == {"candidates": 12, "accepted": 6, "rate": 0.5, "judge_yes": 6,
                                 "judge_no": 6, "judge_errors": 0}
    assert acceptance["by_task"]["mapping-1"]["rate"] == 0.5
    assert acceptance["by_level"]["1"]["candidates"] == 12
    assert acceptance["judge"]["kind"] == "glyph"
    # the reasons: the judge's raw text is kept for every candidate
    assert all(v["raw"] for v in lines(folder / "verdicts.jsonl"))

    understanding = snapshot(tiny_model.trainable_parameters("understanding"))
    metrics = run.stage3(phase)
    # 100 steps asked, but at most max_epochs=1 pass over the 6 accepted images: 3 steps
    assert metrics["examples"] == 6 and metrics["steps"] == 3
    assert identical(snapshot(tiny_model.trainable_parameters("understanding")), understanding)


def test_self_judge_borrows_the_model_and_keeps_its_reasons(tiny_model, tmp_path: Path) -> None:
    """The default judge is the model's own understanding (an untrained one writes no
    'Final Answer', which is an error, never a yes); nothing is accepted, nothing trained."""
    generation = snapshot(tiny_model.trainable_parameters("generation"))
    result = StarsTrainer(tasks="math-1", n=2, k=1, steps=2, progress=False).train(tiny_model, tmp_path)
    verdicts = lines(tmp_path / "round1-level1" / "verdicts.jsonl")
    assert len(verdicts) == 2 and all(v["verdict"] == "error" and not v["accepted"] for v in verdicts)
    assert all("Final Answer" in v["raw"] for v in verdicts)
    assert result.metrics["accepted"] == 0 and result.metrics["train_steps"] == 0
    assert identical(snapshot(tiny_model.trainable_parameters("generation")), generation)
    assert json.loads((tmp_path / "round1-level1" / "acceptance.json").read_text())["judge"]["kind"] == "self"


def test_consistency_filter_gets_the_phase_tasks(tiny_model, tmp_path: Path) -> None:
    """judge_args mode=consistency: the self judge asks the task's question and describes
    each candidate (an untrained model states no usable answer: no, never accepted)."""
    StarsTrainer(tasks="math-1", n=2, k=1, steps=2, progress=False,
                 judge_args={"mode": "consistency"}).train(tiny_model, tmp_path)
    verdicts = lines(tmp_path / "round1-level1" / "verdicts.jsonl")
    assert len(verdicts) == 2 and all(v["verdict"] == "no" and not v["accepted"] for v in verdicts)
    assert all("own answer:" in v["raw"] and "description:" in v["raw"] for v in verdicts)
    judge = json.loads((tmp_path / "round1-level1" / "acceptance.json").read_text())["judge"]
    assert judge["mode"] == "consistency"


@pytest.mark.parametrize("crash", ["stage1", "between", "stage3"])
def test_a_crash_resumes_to_the_same_model(tiny_checkpoint: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, crash: str) -> None:
    from unisandbox_query.model import QueryModel

    args = {**FAST, "no_filter": True, "gen_batch": 2, "save_every": 2}
    straight = QueryModel.from_pretrained(tiny_checkpoint)
    StarsTrainer(**args).train(straight, tmp_path / "straight")

    model = QueryModel.from_pretrained(tiny_checkpoint)
    out = tmp_path / "crashed"
    calls = {"n": 0}

    def failing(method: str, after: int):
        original = getattr(model, method)

        def wrapper(*a, **kw):
            calls["n"] += 1
            if calls["n"] == after:
                raise RuntimeError("simulated crash")
            return original(*a, **kw)

        monkeypatch.setattr(model, method, wrapper)

    if crash == "stage1":  # the third chunk of level 2's candidates
        failing("generate", 3 + 3)
    elif crash == "between":  # after level 1's stage II, before its stage III
        original = StarsRun.stage3
        monkeypatch.setattr(StarsRun, "stage3", lambda self, phase, sources=None: (_ for _ in ()).throw(
            RuntimeError("simulated crash")))
    else:  # inside level 2's fine-tuning, after a saved state
        failing("generation_loss", 3 + 3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        StarsTrainer(**args).train(model, out)
    monkeypatch.undo()
    level1, level2 = out / "round1-level1", out / "round1-level2"
    if crash == "stage1":  # two chunks of level 2 landed, the stage is not done
        assert len(lines(level2 / "candidates.jsonl")) == 4
        assert (level1 / "stage3.done").is_file() and not (level2 / "stage1.done").exists()
    elif crash == "between":
        assert (level1 / "stage2.done").is_file() and not (level1 / "stage3.done").exists()
        assert StarsRun.stage3 is original
    else:  # level 2's fine-tuning saved its state at step 2 and died in step 2
        state = json.loads((level2 / "train" / "state" / "latest.json").read_text())
        assert state == {"step": 2} and not (level2 / "stage3.done").exists()

    fresh = QueryModel.from_pretrained(tiny_checkpoint)
    StarsTrainer(**args).train(fresh, out)
    assert identical(snapshot(fresh.trainable_parameters("generation")),
                     snapshot(straight.trainable_parameters("generation")))
    for level in (1, 2):  # the same candidates (timings aside), each once
        assert without_timing(out / f"round1-level{level}" / "candidates.jsonl") == \
            without_timing(tmp_path / "straight" / f"round1-level{level}" / "candidates.jsonl")


def without_timing(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "t_generate"} for r in lines(path)]


def test_phases_curriculum_mixed_and_rounds(tiny_model, tmp_path: Path) -> None:
    curriculum = StarsRun(StarsTrainer(tasks="math-1,math-2,math-3", n=1, steps=10, rounds=2,
                                       progress=False), tiny_model, tmp_path)
    assert curriculum.phases() == [
        Phase(1, (1,), "round1-level1", 4), Phase(1, (2,), "round1-level2", 3),
        Phase(1, (3,), "round1-level3", 3), Phase(2, (1,), "round2-level1", 4),
        Phase(2, (2,), "round2-level2", 3), Phase(2, (3,), "round2-level3", 3)]
    mixed = StarsRun(StarsTrainer(tasks="math-1,math-3", n=1, order="mixed", progress=False),
                     tiny_model, tmp_path)
    assert mixed.phases() == [Phase(1, (1, 3), "round1-mixed", 240)]
    assert split_steps(2, 3) == [1, 1, 1] and split_steps(None, 2) == [None, None]
    phases = curriculum.phases()
    assert curriculum.training_phases(phases, phases[4]) == phases[3:5]
    alone = StarsRun(StarsTrainer(tasks="math-1,math-2", n=1, replay=False, progress=False),
                     tiny_model, tmp_path)
    assert alone.training_phases(alone.phases(), alone.phases()[1]) == [alone.phases()[1]]


def test_stars_arguments_and_tasks_are_checked(tiny_model, tmp_path: Path) -> None:
    spec = get_registry().trainer("stars")
    for message, args in {
        "order must be one of curriculum, mixed": {"order": "random"},
        "k must be at least 1": {"k": 0},
        "judge_args must be a JSON object": {"judge_args": "[1]"},
        "warmup is a fraction": {"warmup": 1.5},
        "tasks must be a list": {"tasks": 3},
    }.items():
        with pytest.raises(UserError, match=message):
            build(spec, args)
    assert build(spec, {"judge_args": '{"use_answer": true}'}).judge_args == {"use_answer": True}
    data = tmp_path / "math_1.jsonl"
    data.write_text('{"Question": "Draw 2 red stars.", "Answer": "2 red stars.", "id": "1"}\n')
    with pytest.raises(UserError, match="no split argument"):
        StarsTrainer(tasks="unisandbox-file").train(tiny_model, tmp_path / "x")
    with pytest.raises(UserError, match=r"unknown judge .no-such-judge."):
        StarsTrainer(judge="no-such-judge", progress=False).train(tiny_model, tmp_path / "y")
    # a bad judge argument stops the run before stage I draws a candidate or claims the folder
    with pytest.raises(UserError, match="mode must be one of verdict, consistency"):
        StarsTrainer(**FAST, judge_args={"mode": "bogus"}).train(tiny_model, tmp_path / "z")
    assert not (tmp_path / "z").exists()


def raw_gap(model, prompts: list[str], teachers: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.generation_condition(prompts) - teachers).pow(2).mean())


def test_distill_teaches_the_raw_prompt_the_condition_that_drew_the_image(
        tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """distill > 0: the teachers are the model's own think-context conditions, computed once
    before stage III trains; training pulls the raw prompt's condition toward them; a crash
    inside stage III resumes with the same teachers to the same parameters."""
    from safetensors.torch import load_file
    from unisandbox_query.model import QueryModel

    args = {**FAST, "tasks": "math-1", "no_filter": True, "distill": 100.0, "steps": 12,
            "lr": 5e-3, "save_every": 4}
    base = QueryModel.from_pretrained(tiny_checkpoint)
    understanding = snapshot(base.trainable_parameters("understanding"))
    straight = tmp_path / "straight"
    StarsTrainer(**args).train(base, straight)
    phase = straight / "round1-level1"
    accepted = lines(phase / "accepted.jsonl")
    teachers = load_file(str(phase / "teachers.safetensors"))["teachers"]
    fresh = QueryModel.from_pretrained(tiny_checkpoint)
    prompts = [c["prompt"] for c in accepted]
    with torch.no_grad():  # the condition that drew each image: prompt + the model's own reasoning
        assert torch.allclose(teachers, fresh.generation_condition(prompts, [c["think"] for c in accepted]))
    assert teachers.shape[0] == len(accepted) == 6
    plain = QueryModel.from_pretrained(tiny_checkpoint)  # the same run without distill
    StarsTrainer(**{**args, "distill": 0}).train(plain, tmp_path / "plain")
    assert raw_gap(base, prompts, teachers) < 0.5 * raw_gap(plain, prompts, teachers)
    assert identical(snapshot(base.trainable_parameters("understanding")), understanding)
    assert json.loads((phase / "stage3.done").read_text())["distill"] == 100.0
    assert json.loads((straight / "trainer.json").read_text())["arguments"]["distill"] == 100.0
    assert "distill" not in json.loads((tmp_path / "plain" / "trainer.json").read_text())["arguments"]

    model = QueryModel.from_pretrained(tiny_checkpoint)
    calls = {"n": 0}
    original = model.generation_condition

    def failing(*a, **kw):  # the 1 teacher chunk, then training's steps 0..5: dies in step 5
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("simulated crash")
        return original(*a, **kw)

    monkeypatch.setattr(model, "generation_condition", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        StarsTrainer(**args).train(model, tmp_path / "crashed")
    monkeypatch.undo()
    crashed = tmp_path / "crashed" / "round1-level1"
    kept = (crashed / "teachers.safetensors").read_bytes()
    assert json.loads((crashed / "train" / "state" / "latest.json").read_text()) == {"step": 4}
    resumed = QueryModel.from_pretrained(tiny_checkpoint)
    StarsTrainer(**args).train(resumed, tmp_path / "crashed")
    assert (crashed / "teachers.safetensors").read_bytes() == kept
    assert identical(snapshot(resumed.trainable_parameters("generation")),
                     snapshot(base.trainable_parameters("generation")))


def test_keep_think_holds_the_think_context_condition_where_it_was(
        tiny_checkpoint: Path, tmp_path: Path) -> None:
    """keep_think > 0: stage III also holds the condition for the prompt *with* its reasoning
    where it was before training (the image-only run moves it), so the generator keeps
    reading the plan; the generation side still trains; trainer.json and stage3.done record
    the weight."""
    from safetensors.torch import load_file
    from unisandbox_query.model import QueryModel

    args = {**FAST, "tasks": "math-1", "no_filter": True, "steps": 12, "lr": 5e-3}
    drifted = QueryModel.from_pretrained(tiny_checkpoint)
    StarsTrainer(**args).train(drifted, tmp_path / "drifted")
    kept = QueryModel.from_pretrained(tiny_checkpoint)
    StarsTrainer(**args, keep_think=100.0).train(kept, tmp_path / "kept")
    phase = tmp_path / "kept" / "round1-level1"
    accepted = lines(phase / "accepted.jsonl")
    teachers = load_file(str(phase / "teachers.safetensors"))["teachers"]
    prompts, thinks = [c["prompt"] for c in accepted], [c["think"] for c in accepted]

    def think_gap(model) -> float:
        with torch.no_grad():
            return float((model.generation_condition(prompts, thinks) - teachers).pow(2).mean())

    assert think_gap(kept) < 0.1 * think_gap(drifted)  # measured: 0.0003 against 0.13
    fresh = QueryModel.from_pretrained(tiny_checkpoint)
    assert not identical(snapshot(kept.trainable_parameters("generation")),
                         snapshot(fresh.trainable_parameters("generation")))
    assert json.loads((phase / "stage3.done").read_text())["keep_think"] == 100.0
    assert json.loads((tmp_path / "kept" / "trainer.json").read_text())["arguments"]["keep_think"] == 100.0
    assert "keep_think" not in json.loads((tmp_path / "drifted" / "trainer.json").read_text())["arguments"]


def test_internalization_takes_the_reasoning_away_from_its_end() -> None:
    """The plan goes first, then the worked steps from the last; raw prompts after the span."""
    long, short = "18 / 6 = 3 . 13 - 7 = 6 . 6 - 3 = 3 . so draw 3 red stars .", "2 * 1 = 2 . so draw 2 crosses ."
    assert sentences(long)[-1] == "so draw 3 red stars ." and len(sentences(long)) == 4
    assert sentences("It is 3.5 cm. Draw it!") == ["It is 3.5 cm.", "Draw it!"]
    cut = Internalization([long, short, None], span=8)
    assert cut.stages == 4
    assert [cut.removed(s) for s in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 4, 4]
    assert cut(long, 0) == "18 / 6 = 3 . 13 - 7 = 6 . 6 - 3 = 3 ."
    assert cut(long, 3) == "18 / 6 = 3 . 13 - 7 = 6 ."
    assert cut(long, 5) == "18 / 6 = 3 ."
    assert cut(short, 0) == "2 * 1 = 2 ."
    assert cut(short, 2) is None and cut(long, 6) is None and cut(long, 100) is None
    assert cut(None, 0) is None


def test_internalize_conditions_stage_three_on_less_and_less_reasoning(
        tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """internalize > 0: stage III's early steps condition on the reasoning without its end,
    the later ones on the raw prompt; the understanding stays frozen; the run records it."""
    from unisandbox_query.model import QueryModel

    model = QueryModel.from_pretrained(tiny_checkpoint)
    understanding = snapshot(model.trainable_parameters("understanding"))
    seen: list[list[str | None]] = []
    original = model.generation_condition

    def recording(prompts, thinks=None):
        seen.append(list(thinks) if thinks is not None else [None] * len(prompts))
        return original(prompts, thinks)

    monkeypatch.setattr(model, "generation_condition", recording)
    reasoning = "1 + 1 = 2 . 2 + 1 = 3 . so draw 3 red stars ."  # the untrained model's is noise
    monkeypatch.setattr(model.umm, "think", lambda prompts, *_: [reasoning] * len(prompts))
    args = {**FAST, "tasks": "math-1", "no_filter": True, "distill": 1.0, "internalize": 0.5,
            "steps": 8, "batch_size": 2}
    StarsTrainer(**args).train(model, tmp_path / "run")
    accepted = lines(tmp_path / "run" / "round1-level1" / "accepted.jsonl")
    assert {c["think"] for c in accepted} == {reasoning}
    training = seen[-8:]  # after the teachers: one call a step; 3 stages over 4 steps
    assert training[0] == training[1] == ["1 + 1 = 2 . 2 + 1 = 3 ."] * 2  # the plan gone
    assert training[2] == ["1 + 1 = 2 ."] * 2  # and the last worked step
    assert all(step == [None, None] for step in training[3:])  # the raw prompt from then on
    assert identical(snapshot(model.trainable_parameters("understanding")), understanding)
    assert json.loads((tmp_path / "run" / "trainer.json").read_text())["arguments"]["internalize"] == 0.5
    for bad in (-0.1, 1.5, "a"):
        with pytest.raises(ValueError, match="internalize must be"):
            StarsTrainer(internalize=bad)


def test_distill_needs_the_condition_capability(tiny_model, tmp_path: Path) -> None:
    tiny_model.capabilities = tiny_model.capabilities - {"condition"}
    with pytest.raises(UserError, match="distill needs a model with the 'condition' capability"):
        StarsTrainer(**FAST, distill=0.5).train(tiny_model, tmp_path / "x")
    with pytest.raises(UserError, match="keep_think needs a model with the 'condition' capability"):
        StarsTrainer(**FAST, keep_think=1).train(tiny_model, tmp_path / "y")
    with pytest.raises(UserError, match="internalize needs a model with the 'condition' capability"):
        StarsTrainer(**FAST, internalize=0.5).train(tiny_model, tmp_path / "z")
    for bad in (-1, "a", True, float("nan")):
        with pytest.raises(ValueError, match="distill must be a number >= 0"):
            StarsTrainer(distill=bad)
        with pytest.raises(ValueError, match="keep_think must be a number >= 0"):
            StarsTrainer(keep_think=bad)


def test_candidates_from_copies_the_first_phase_of_a_run_with_the_same_candidates(
        tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter ablation on the very same images: the unfiltered run copies the filtered run's
    stage I of its first phase (what it would have generated anyway), and generates the later
    phases itself (they come from the model its own stage III trained)."""
    from unisandbox_query.model import QueryModel

    filtered = tmp_path / "filtered"
    StarsTrainer(**FAST, judge="glyph").train(QueryModel.from_pretrained(tiny_checkpoint), filtered)

    model = QueryModel.from_pretrained(tiny_checkpoint)
    generated: list[int] = []
    original = model.generate
    monkeypatch.setattr(model, "generate", lambda requests: generated.append(len(requests))
                        or original(requests))
    ablation = tmp_path / "no-filter"
    StarsTrainer(**FAST, no_filter=True, candidates_from=str(filtered)).train(model, ablation)
    assert sum(generated) == 3 * 2  # level 2's candidates only
    level1 = ablation / "round1-level1"
    done = json.loads((level1 / "stage1.done").read_text())
    assert done["copied_from"] == str((filtered / "round1-level1").resolve()) and done["generated"] == 0
    assert without_timing(level1 / "candidates.jsonl") == \
        without_timing(filtered / "round1-level1" / "candidates.jsonl")
    for c in lines(level1 / "candidates.jsonl"):
        assert (level1 / c["image"]).read_bytes() == (filtered / "round1-level1" / c["image"]).read_bytes()
    assert "copied_from" not in json.loads((ablation / "round1-level2" / "stage1.done").read_text())
    assert len(lines(ablation / "round1-level1" / "accepted.jsonl")) == 6  # no filter: all kept
    # the copy is what generating gives: a third run's own stage I of that phase is the same
    own = StarsRun(StarsTrainer(**FAST), QueryModel.from_pretrained(tiny_checkpoint), tmp_path / "own")
    first = own.phases()[0]
    own.stage1(first, [(t, s) for t in own.tasks for s in t.samples() if s.level == 1])
    assert without_timing(tmp_path / "own" / first.name / "candidates.jsonl") == \
        without_timing(level1 / "candidates.jsonl")

    # parts the generation path is given to train (inert until stage III) do not change the
    # candidates: a run with a query expert may copy them; resuming a run with them may not
    expert = QueryModel.from_pretrained(tiny_checkpoint, query_expert_rank=2, query_expert_scope="all")
    with_expert = StarsRun(StarsTrainer(**FAST, candidates_from=str(filtered)), expert, tmp_path / "expert")
    first = with_expert.phases()[0]
    assert with_expert._candidates_source(first, with_expert._items(first)) == filtered / "round1-level1"
    with pytest.raises(UserError, match=r"holds another training run \(model\."):
        StarsTrainer(**FAST, judge="glyph").train(expert, filtered)

    fresh = QueryModel.from_pretrained(tiny_checkpoint)
    trimmed = tmp_path / "trimmed"  # the same run with one candidate fewer in its stage I
    shutil.copytree(filtered, trimmed)
    log = trimmed / "round1-level1" / "candidates.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    for message, args in {
        r"has k=2, this run 3": {**FAST, "k": 3, "candidates_from": str(filtered)},
        r"has order='curriculum', this run 'mixed'": {**FAST, "order": "mixed",
                                                      "candidates_from": str(filtered)},
        "is not a stars run folder": {**FAST, "candidates_from": str(tmp_path)},
        "this run's own folder": {**FAST, "candidates_from": str(tmp_path / "self")},
        # a stage I that holds other prompts is refused before the folder is claimed
        "holds other prompts than this run's": {**FAST, "candidates_from": str(trimmed)},
    }.items():
        out = tmp_path / "self" if "own folder" in message else tmp_path / "bad"
        with pytest.raises(UserError, match=message):
            StarsTrainer(**args).train(fresh, out)
        assert not (out / "trainer.json").exists()  # the folder is not claimed by a wrong source
    with pytest.raises(ValueError, match="candidates_from must be the folder of another stars run"):
        StarsTrainer(candidates_from=3)


def test_think_temperature_samples_a_reasoning_per_candidate(tiny_model, tmp_path: Path) -> None:
    """Greedy reasoning (the default) gives a prompt's k candidates one reasoning, so the filter
    can only keep or drop it; ``think_temperature`` gives each candidate its own attempt."""
    args = {**FAST, "tasks": "math-3", "no_filter": True, "steps": 1}

    def reasonings(out: Path) -> list[int]:
        by_prompt: dict[str, set[str]] = {}
        for c in lines(out / "round1-level3" / "candidates.jsonl"):
            by_prompt.setdefault(c["id"], set()).add(c["think"])
        return [len(v) for v in by_prompt.values()]

    run = StarsRun(StarsTrainer(**args), tiny_model, tmp_path / "greedy")
    (phase,) = run.phases()
    items = [(t, s) for t in run.tasks for s in t.samples()]
    run.stage1(phase, items)
    assert reasonings(tmp_path / "greedy") == [1, 1, 1]
    hot = StarsTrainer(**args, think_temperature=2.0)
    assert hot.arguments()["think_temperature"] == 2.0
    StarsRun(hot, tiny_model, tmp_path / "hot").stage1(phase, items)
    assert max(reasonings(tmp_path / "hot")) == 2

    tiny_model.capabilities = tiny_model.capabilities - {"think_sampling"}
    with pytest.raises(UserError, match="think_temperature needs a model with the 'think_sampling'"):
        StarsTrainer(**args, think_temperature=0.5).train(tiny_model, tmp_path / "x")
    for bad in (-0.5, "warm", float("inf")):
        with pytest.raises(ValueError, match="think_temperature must be a number >= 0"):
            StarsTrainer(think_temperature=bad)


def test_stage_two_with_no_verdict_at_all_stops_and_judges_again_on_resume(
        tiny_model, tmp_path: Path) -> None:
    """Every verdict of a judge server an error (it answers every call with HTTP 500, say)
    stops the run without marking stage II done; the same command judges them again. A local
    judge that cannot decide (the self judge of an untrained model) rejects instead."""
    trainer = StarsTrainer(tasks="math-1", n=2, k=1, judge="glyph", steps=2, batch_size=2,
                           order="mixed", progress=False)
    run = StarsRun(trainer, tiny_model, tmp_path)
    run._inner["judge"].ping = lambda: []  # the glyph judge stands in for a server here
    (phase,) = run.phases()
    folder = tmp_path / phase.name
    records = []
    for s in run.tasks[0].samples():
        image = f"images/math-1/{s.id}-k0.png"
        (folder / image).parent.mkdir(parents=True, exist_ok=True)
        (folder / image).write_bytes(b"not a png")  # nothing the judge can read
        records.append({"task": "math-1", "id": s.id, "k": 0, "level": s.level,
                        "prompt": s.prompt, "seed": 0, "think": "", "image": image})
    JsonlLog(folder / "candidates.jsonl").append(records)
    (folder / "stage1.done").write_text("{}")
    with pytest.raises(UserError, match=r"2 of 2 verdicts are errors .* run the same command"):
        run.stage2(phase)
    assert not (folder / "stage2.done").exists()
    for r, s in zip(records, run.tasks[0].samples(), strict=True):  # the judge can read them now
        save_png(folder / r["image"], render({**s.target, "count": s.target.get("count", 1)}))
    acceptance = run.stage2(phase)
    assert acceptance["all"]["judge_errors"] == 0 and acceptance["all"]["accepted"] == 2
    assert (folder / "stage2.done").is_file()
