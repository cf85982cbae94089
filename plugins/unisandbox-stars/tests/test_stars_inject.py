"""``inject``: understanding only, recall rises, resumable, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from unisandbox.answers import words
from unisandbox.errors import DataError, UserError
from unisandbox.factories import build
from unisandbox.registry import get_registry
from unisandbox.run.store import JsonlLog
from unisandbox.tasks.published import read_conversations
from unisandbox_stars.inject import InjectTrainer, data_files, load_conversations

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference" / "unisandbox-official"


def snapshot(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def identical(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def recall(model, conversations) -> float:
    """Share of questions whose greedy answer is exactly the corpus answer (word level)."""
    replies = model.chat([c.turns[0].text for c in conversations])
    return sum(words(r) == words(c.turns[1].text)
               for r, c in zip(replies, conversations, strict=True)) / len(conversations)


def step_losses(folder: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in JsonlLog(folder / "metrics.jsonl").read()}


@torch.no_grad()
def corpus_loss(model, conversations) -> float:
    return float(model.text_loss(conversations))


def test_inject_trains_understanding_only_and_recall_rises(tiny_model, corpus_file: Path,
                                                           tmp_path: Path) -> None:
    conversations = read_conversations(corpus_file)
    generation = snapshot(tiny_model.trainable_parameters("generation"))
    understanding = snapshot(tiny_model.trainable_parameters("understanding"))
    loss_before, recall_before = corpus_loss(tiny_model, conversations), recall(tiny_model, conversations)

    trainer = InjectTrainer(data=str(corpus_file), steps=200, lr=4e-3, batch_size=16,
                            progress=False)
    result = trainer.train(tiny_model, tmp_path / "inject")

    assert identical(snapshot(tiny_model.trainable_parameters("generation")), generation)
    assert not identical(snapshot(tiny_model.trainable_parameters("understanding")), understanding)
    loss_after, recall_after = corpus_loss(tiny_model, conversations), recall(tiny_model, conversations)
    assert loss_after < 0.3 * loss_before, (loss_before, loss_after)
    assert recall_before == 0.0 and recall_after >= 0.4, (recall_before, recall_after)
    # every parameter is trainable again afterwards (the freeze is undone)
    assert all(p.requires_grad for p in tiny_model.trainable_parameters("generation"))

    # the checkpoint is a model folder that loads to exactly the trained parameters
    from unisandbox_query.model import QueryModel

    assert result.checkpoint == tmp_path / "inject" / "model"
    loaded = QueryModel.from_pretrained(result.checkpoint)
    assert identical(snapshot(loaded.trainable_parameters("understanding")),
                     snapshot(tiny_model.trainable_parameters("understanding")))
    assert identical(snapshot(loaded.trainable_parameters("generation")), generation)
    metrics = [json.loads(line) for line in (tmp_path / "inject" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(200))
    assert result.metrics["warmup_steps"] == 10 and result.metrics["conversations"] == 80
    # warm-up then cosine: the peak is reached after the warm-up and the rate decays to ~0
    lrs = [m["lr"] for m in metrics]
    assert max(lrs) == pytest.approx(4e-3, rel=0.02) and lrs[0] < lrs[10] and lrs[-1] < 1e-5


def failing_at(model, call: int, exc: BaseException):
    """``model`` whose ``text_loss`` raises ``exc`` at its ``call``-th call (one per step here)."""
    calls = {"n": 0}
    original = model.text_loss

    def text_loss(batch):
        calls["n"] += 1
        if calls["n"] == call:
            raise exc
        return original(batch)

    model.text_loss = text_loss
    return model


def test_inject_resumes_after_a_crash_to_the_same_parameters(tiny_checkpoint: Path,
                                                             corpus_file: Path,
                                                             tmp_path: Path) -> None:
    from unisandbox_query.model import QueryModel

    args = {"data": str(corpus_file), "steps": 9, "lr": 2e-3, "batch_size": 8, "save_every": 3,
            "progress": False}
    straight = QueryModel.from_pretrained(tiny_checkpoint)
    InjectTrainer(**args).train(straight, tmp_path / "straight")

    # inside step 7, after the state of step 6 was saved
    crashing = failing_at(QueryModel.from_pretrained(tiny_checkpoint), 8, RuntimeError("simulated crash"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        InjectTrainer(**args).train(crashing, tmp_path / "resumed")
    assert json.loads((tmp_path / "resumed" / "state" / "latest.json").read_text())["step"] == 6
    assert (tmp_path / "resumed" / "checkpoints" / "step-6" / "model.safetensors").is_file()

    fresh = QueryModel.from_pretrained(tiny_checkpoint)
    result = InjectTrainer(**args).train(fresh, tmp_path / "resumed")
    assert result.metrics["resumed_at"] == 6
    assert identical(snapshot(fresh.trainable_parameters("understanding")),
                     snapshot(straight.trainable_parameters("understanding")))
    # the metrics log has every step, with the uninterrupted run's losses
    assert step_losses(tmp_path / "resumed") == step_losses(tmp_path / "straight")
    assert sorted(step_losses(tmp_path / "resumed")) == list(range(9))

    # a finished folder is not trained again: its final parameters load into the model
    again = QueryModel.from_pretrained(tiny_checkpoint)
    InjectTrainer(**args).train(again, tmp_path / "resumed")
    assert identical(snapshot(again.trainable_parameters("understanding")),
                     snapshot(straight.trainable_parameters("understanding")))
    # ... and a different setting on the same folder is refused
    with pytest.raises(UserError, match="another training run"):
        InjectTrainer(**{**args, "lr": 1e-3}).train(again, tmp_path / "resumed")


def test_ctrl_c_saves_a_state_to_resume_from_without_save_every(tiny_checkpoint: Path, corpus_file: Path,
                                                                 tmp_path: Path, capsys) -> None:
    from unisandbox_query.model import QueryModel

    args = {"data": str(corpus_file), "steps": 6, "lr": 2e-3, "batch_size": 8, "progress": False}
    straight = QueryModel.from_pretrained(tiny_checkpoint)
    InjectTrainer(**args).train(straight, tmp_path / "straight")

    # inside step 4: four steps done, no state saved (save_every=0)
    stopped = failing_at(QueryModel.from_pretrained(tiny_checkpoint), 5, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        InjectTrainer(**args).train(stopped, tmp_path / "resumed")
    assert "interrupted; state saved at step 4" in capsys.readouterr().err
    assert not (tmp_path / "resumed" / "checkpoints").exists()  # a state, not a model folder

    fresh = QueryModel.from_pretrained(tiny_checkpoint)
    assert InjectTrainer(**args).train(fresh, tmp_path / "resumed").metrics["resumed_at"] == 4
    assert identical(snapshot(fresh.trainable_parameters("understanding")),
                     snapshot(straight.trainable_parameters("understanding")))
    assert step_losses(tmp_path / "resumed") == step_losses(tmp_path / "straight")


def test_a_ctrl_c_held_back_through_an_update_keeps_that_steps_record(
        tiny_checkpoint: Path, corpus_file: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """A SIGINT during an update fires when the update is done: the state saved is after that
    step, and metrics.jsonl has that step's record too (it was lost, leaving a gap)."""
    import os
    import re
    import signal

    from unisandbox_query.model import QueryModel
    from unisandbox_stars import finetune

    args = {"data": str(corpus_file), "steps": 6, "lr": 2e-3, "batch_size": 8, "progress": False}
    InjectTrainer(**args).train(QueryModel.from_pretrained(tiny_checkpoint), tmp_path / "straight")
    real, calls = finetune.copy_masters, []

    def copy_then_interrupt(params, masters):
        real(params, masters)
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # held back until the update is whole

    monkeypatch.setattr(finetune, "copy_masters", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        InjectTrainer(**args).train(QueryModel.from_pretrained(tiny_checkpoint), tmp_path / "resumed")
    saved = int(re.search(r"state saved at step (\d+)", capsys.readouterr().err).group(1))
    assert saved >= 2 and sorted(step_losses(tmp_path / "resumed")) == list(range(saved))
    monkeypatch.setattr(finetune, "copy_masters", real)
    InjectTrainer(**args).train(QueryModel.from_pretrained(tiny_checkpoint), tmp_path / "resumed")
    assert step_losses(tmp_path / "resumed") == step_losses(tmp_path / "straight")


def test_arguments_are_checked_with_clear_messages(corpus_file: Path, tmp_path: Path) -> None:
    spec = get_registry().trainer("inject")
    assert spec.distribution == "unisandbox-stars"
    cases = {
        "warmup is a fraction of the run": {"warmup": 2000},
        "schedule must be one of cosine, constant": {"schedule": "linear"},
        "steps or epochs, not both": {"steps": 3, "epochs": 1},
        "does not exist": {"data": str(tmp_path / "missing.jsonl")},
        "unknown argument 'warmup_steps'": {"warmup_steps": 10},
    }
    for message, args in cases.items():
        with pytest.raises(UserError, match=message):
            build(spec, {"data": str(corpus_file), **args})


def test_bad_data_is_a_data_error_naming_file_line_and_field(tiny_model, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "conversations": [{"from": "human", "value": "Hi?"}, '
                   '{"from": "gpt", "value": "Hello."}]}\n'
                   '{"id": 2, "conversations": [{"from": "robot", "value": "x"}]}\n')
    with pytest.raises(DataError) as info:
        InjectTrainer(data=str(bad), steps=1, progress=False).train(tiny_model, tmp_path / "out")
    assert str(info.value).startswith(f"{bad}:2: field 'conversations[0].from'")
    # a conversation with no reply to learn (or turns out of order) is refused when read
    bad.write_text('{"id": 1, "conversations": [{"from": "human", "value": "Hi?"}]}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: field 'conversations': no gpt turn"):
        InjectTrainer(data=str(bad), steps=1, progress=False).train(tiny_model, tmp_path / "out2")
    bad.write_text('{"id": 1, "conversations": [{"from": "gpt", "value": "Hi."}, '
                   '{"from": "human", "value": "Hello?"}]}\n')
    with pytest.raises(DataError, match=r"conversations\[0\].from': expected human"):
        InjectTrainer(data=str(bad), steps=1, progress=False).train(tiny_model, tmp_path / "out3")


def test_cli_runs_inject_and_reports_data_errors(tiny_checkpoint: Path, corpus_file: Path,
                                                 tmp_path: Path, capsys) -> None:
    from unisandbox.cli.main import main

    out = tmp_path / "cli"
    code = main(["train", "inject", "--model", "query", "--model-arg", f"path={tiny_checkpoint}",
                 "--train-arg", f"data={corpus_file}", "--train-arg", "steps=2",
                 "--out", str(out), "--json"])
    assert code == 0
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert result["checkpoint"] == str(out / "model") and result["metrics"]["steps"] == 2
    assert "inject: 2/2 step" in printed.err  # stderr is a log here: the bar's last line
    code = main(["train", "inject", "--model", "query", "--model-arg", f"path={tiny_checkpoint}",
                 "--train-arg", f"data={corpus_file}", "--train-arg", "steps=2",
                 "--out", str(tmp_path / "quiet"), "--quiet"])
    assert code == 0 and " step [" not in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    code = main(["train", "inject", "--model", "query", "--model-arg", f"path={tiny_checkpoint}",
                 "--train-arg", f"data={bad}", "--out", str(tmp_path / "cli2")])
    assert code == 2
    assert f"{bad}:1:" in capsys.readouterr().err
    # a run folder that is, holds or sits in the model it trains would write over its weights
    for where in (out / "model", out, out / "model" / "run"):
        before = (out / "model" / "model.safetensors").read_bytes()
        code = main(["train", "inject", "--model", "query", "--model-arg", f"path={out / 'model'}",
                     "--train-arg", f"data={corpus_file}", "--train-arg", "steps=2", "--out", str(where)])
        assert code == 2 and "overlap" in capsys.readouterr().err
        assert (out / "model" / "model.safetensors").read_bytes() == before
    assert not (out / "model" / "run").exists()
    # another run's folder, or the default checkpoint a model loads without a path
    code = main(["train", "inject", "--model", "query", "--model-arg", f"path={tiny_checkpoint}",
                 "--train-arg", f"data={corpus_file}", "--out", str(out / "nested")])
    assert code == 2 and "inside the training run" in capsys.readouterr().err
    from unisandbox_query.factories import default_checkpoint

    shipped = default_checkpoint()
    code = main(["train", "inject", "--model", "query-tiny", "--train-arg", f"data={corpus_file}",
                 "--out", str(shipped / "run")])
    assert code == 2 and "overlap" in capsys.readouterr().err and not (shipped / "run").exists()


@pytest.mark.skipif(not (REFERENCE / "knowledge_train").is_dir(), reason="reference data absent")
def test_published_knowledge_folder_reads_each_conversation_once() -> None:
    files = data_files(str(REFERENCE / "knowledge_train"))
    conversations, dropped = load_conversations(files)
    # 10 single files of 40 conversations; the 5 pair files repeat their two singles
    assert len(files) == 15 and len(conversations) == 400 and dropped == 400


def test_train_help_after_a_trainer_lists_its_arguments(capsys) -> None:
    from unisandbox.cli.main import main

    assert main(["train", "inject", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Trainer inject (unisandbox-stars")
    assert "  data           (required)" in out and "  lr             default 0.001" in out
    assert "  steps          default null: from epochs" in out
    assert "  epochs         default null: 12 when steps is not given" in out and "Usage: unisandbox train" in out
    assert main(["train", "--help"]) == 0
    assert capsys.readouterr().out.startswith("Usage: unisandbox train")
