"""run_trainer, the engine side of `unisandbox train`: what a failing trainer leaves and says."""

from __future__ import annotations

import pytest
from unisandbox.training import run_trainer

SOURCE = '''
from pathlib import Path
from unisandbox.hookspecs import hookimpl
from unisandbox.protocols import Model, Trainer
from unisandbox.specs import ModelSpec, TrainerSpec
PLUGIN_API_VERSION = 1

class Plain(Model):
    capabilities = frozenset({"chat"})
    def chat(self, prompts):
        return ["x" for _ in prompts]

class HalfWay(Trainer):
    def train(self, model, out_dir):
        (Path(out_dir) / "step-1.txt").write_text("kept")
        raise RuntimeError("the trainer's own bug")

@hookimpl
def register_models(register):
    register(ModelSpec(name="plain", factory=Plain, description="a model", capabilities={"chat"}))

@hookimpl
def register_trainers(register):
    register(TrainerSpec(name="halfway", factory=HalfWay, description="fails after one step"))
'''


def test_a_trainer_failing_mid_way_keeps_its_folder_and_says_whose_bug_and_how_to_resume(plugin_site, tmp_path):
    plugin_site("halfway-dist", "0.2", {"halfway_mod": SOURCE}, {"halfway": "halfway_mod"})
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="the trainer's own bug") as err:
        run_trainer("halfway", model_name="plain", model_args={}, train_args={}, out=out)
    assert (out / "step-1.txt").read_text() == "kept"
    if hasattr(err.value, "add_note"):  # Python 3.11+
        assert err.value.__notes__ == [f"unisandbox: in trainer 'halfway' (halfway-dist 0.2); what {out} "
                                       "holds is kept: run the same command again to resume"]


def test_an_interrupt_inside_an_update_waits_for_the_update_to_finish():
    import os
    import signal

    from unisandbox.training import uninterrupted

    finished = []
    with pytest.raises(KeyboardInterrupt), uninterrupted():
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of an optimizer step
        finished.append("the rest of the step")
    assert finished == ["the rest of the step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_sigterm_is_held_through_an_update_and_ends_a_command_as_ctrl_c_does(tmp_path):
    """A scheduler's SIGTERM (SLURM's time limit) stops a run as Ctrl-C does: after the update
    in progress, with the message saying how to continue, exit 143."""
    import os
    import signal
    import subprocess
    import sys

    from unisandbox.errors import Terminated
    from unisandbox.training import uninterrupted

    finished = []
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), uninterrupted():
        os.kill(os.getpid(), signal.SIGTERM)
        finished.append("the rest of the step")
    assert finished == ["the rest of the step"] and signal.getsignal(signal.SIGTERM) is before

    script = ("import os, signal, sys\n"
              "from unisandbox.cli.main import cli, run_command\n"
              "import click\n"
              "@cli.command('sleep-then-term')\n"
              "def _t():\n    os.kill(os.getpid(), signal.SIGTERM)\n    import time; time.sleep(5)\n"
              "sys.exit(run_command(cli, ['sleep-then-term'], 'unisandbox'))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143 and "Interrupted. Run the same command again" in done.stderr


def test_under_torchrun_sigterm_is_left_to_its_agent(monkeypatch):
    import signal

    from unisandbox.training import uninterrupted

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    before = signal.getsignal(signal.SIGTERM)
    with uninterrupted():
        assert signal.getsignal(signal.SIGTERM) is before  # not held: the agent's to stop us
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
