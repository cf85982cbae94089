"""The fine-tuning loop's guarantees on a minimal model: bf16 parameters still train (fp32
master weights), a non-finite loss stops with a user error and keeps the metrics, a resumed
run's metrics hold each step once, and how often a run logs or saves may change on resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from unisandbox.errors import UserError
from unisandbox.protocols import Model
from unisandbox.run.store import JsonlLog
from unisandbox_stars.finetune import finetune
from unisandbox_stars.options import FinetuneOptions


class Line(Model):
    """y = w x + b, one part; the data are (x, y) pairs."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        torch.manual_seed(0)
        self.net = torch.nn.Linear(1, 1, dtype=dtype)
        with torch.no_grad():
            self.net.weight.fill_(0.5)
            self.net.bias.fill_(0.25)

    def trainable_parameters(self, part: str) -> list[torch.nn.Parameter]:
        return list(self.net.parameters()) if part == "understanding" else []

    def save_pretrained(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()},
                  str(Path(path) / "model.safetensors"))

    def loss(self, batch: list[tuple[float, float]], scale: float = 1.0) -> torch.Tensor:
        x = torch.tensor([[a] for a, _ in batch], dtype=self.net.weight.dtype)
        y = torch.tensor([[b] for _, b in batch], dtype=self.net.weight.dtype)
        return ((self.net(x) - y) ** 2).mean().float() * scale


DATA = [(i / 8, 2 * i / 8 + 1) for i in range(8)]


def run(model: Line, folder: Path, loss=None, **options) -> dict:
    opts = FinetuneOptions(**{"steps": 20, "lr": 1e-5, "batch_size": 8, "schedule": "constant",
                              "warmup": 0.0, **options})
    return finetune(model, "understanding", DATA, loss or (lambda b, seed, step: model.loss(b)),
                    opts, folder, data_key="line", progress=False, log=lambda m: None)


def test_bf16_parameters_train_through_fp32_master_weights(tmp_path):
    # each Adam step moves a weight by about lr = 2e-4, under half of bf16's spacing at 0.5
    # (3.9e-3): stepped in bf16 every update rounds away; 20 of them add up in fp32
    moved = Line(torch.bfloat16)
    run(moved, tmp_path / "masters", lr=2e-4)
    assert moved.net.weight.item() != 0.5 and moved.net.weight.dtype == torch.bfloat16
    stuck = Line(torch.bfloat16)
    run(stuck, tmp_path / "plain", lr=2e-4, master_weights=False)
    assert stuck.net.weight.item() == 0.5 and stuck.net.bias.item() == 0.25
    # fp32 parameters are stepped in place, as before
    exact = Line(torch.float32)
    run(exact, tmp_path / "fp32", lr=2e-4)
    assert exact.net.weight.item() != 0.5


def test_a_non_finite_loss_is_a_user_error_and_keeps_the_steps_before_it(tmp_path):
    model = Line()

    def blows_up(batch, seed, step):
        return model.loss(batch) * (float("nan") if step == 3 else 1.0)

    with pytest.raises(UserError, match=r"not finite .* at step 3; lower lr"):
        run(model, tmp_path / "nan", loss=blows_up, log_every=100)
    assert [r["step"] for r in JsonlLog(tmp_path / "nan" / "metrics.jsonl").read()] == [0, 1, 2]


def test_a_resumed_run_logs_each_step_once_and_may_change_its_bookkeeping(tmp_path):
    folder = tmp_path / "run"
    model = Line()

    def killed_at_7(batch, seed, step):
        if step == 7:
            raise SystemExit("killed")  # as SIGKILL would leave it: no state saved at the stop
        return model.loss(batch)

    with pytest.raises(SystemExit):
        run(model, folder, loss=killed_at_7, save_every=5, log_every=1, lr=1e-2)
    steps = [r["step"] for r in JsonlLog(folder / "metrics.jsonl").read()]
    assert steps == list(range(7))  # 5 and 6 logged after the state saved at 5
    resumed = Line()
    metrics = run(resumed, folder, save_every=10, log_every=3, lr=1e-2)  # bookkeeping changed
    assert metrics["resumed_at"] == 5
    assert [r["step"] for r in JsonlLog(folder / "metrics.jsonl").read()] == list(range(20))
    straight = Line()
    run(straight, tmp_path / "straight", lr=1e-2)
    assert torch.equal(straight.net.weight, resumed.net.weight)


@pytest.mark.parametrize(("damage", "needle"), [
    (lambda f: (f / "state" / "latest.json").write_text("[]"), "latest.json: expected a JSON object"),
    (lambda f: (f / "state" / "latest.json").write_text('{"step": true}'), "field 'step' must be a step number"),
    (lambda f: (f / "state" / "latest.json").write_text('{"step": 999}'), "step 999 is past the run's 20 steps"),
    (lambda f: (f / "finetune.json").write_text("{}"), "finetune.json: field 'fingerprint': missing"),
    (lambda f: (f / "state" / "params-10.safetensors").write_bytes(b"junk"),
     "params-10.safetensors: cannot be read"),
    (lambda f: (f / "state" / "optimizer-10.pt").unlink(), "optimizer-10.pt: missing"),
])
def test_a_damaged_run_folder_is_an_error_naming_the_file(tmp_path, damage, needle):
    folder = tmp_path / "run"
    model = Line()

    def killed_at_12(batch, seed, step):
        if step == 12:
            raise SystemExit("killed")
        return model.loss(batch)

    with pytest.raises(SystemExit):
        run(model, folder, loss=killed_at_12, save_every=10)
    damage(folder)
    with pytest.raises(UserError, match=needle):
        run(Line(), folder, save_every=10)


def test_a_finished_run_without_its_final_parameters_is_an_error(tmp_path):
    run(Line(), tmp_path / "done")
    (tmp_path / "done" / "final.safetensors").unlink()
    with pytest.raises(UserError, match=r"final\.safetensors: missing"):
        run(Line(), tmp_path / "done")
