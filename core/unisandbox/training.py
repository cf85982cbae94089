"""Run a registered trainer on a registered model (what ``unisandbox train`` calls)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import Terminated, UserError, sigterm_stops_like_ctrl_c
from .factories import accepted_arguments, build
from .protocols import TrainResult
from .protocols.returns import PluginError
from .registry import Registry, get_registry


def run_trainer(trainer_name: str, *, model_name: str, model_args: Mapping[str, Any],
                train_args: Mapping[str, Any], out: Path, progress: bool = True,
                registry: Registry | None = None) -> TrainResult:
    """``progress=False`` (``--quiet``) turns the trainer's bars off where it takes a
    ``progress`` argument, whatever ``train_args`` say."""
    registry = registry or get_registry()
    trainer_spec = registry.trainer(trainer_name)
    accepted = accepted_arguments(trainer_spec)
    if not progress and (accepted is None or "progress" in accepted):
        train_args = {**train_args, "progress": False}  # --quiet wins over a progress argument
    model_spec = registry.model(model_name)
    missing = sorted(trainer_spec.requires - model_spec.capabilities)
    if missing:
        raise UserError(f"trainer {trainer_name!r} needs {', '.join(missing)}, which model "
                        f"{model_name!r} does not provide")
    _check_out_apart_from_model(out, model_args.get("path"))
    _check_out_not_inside_a_run(out)
    trainer = build(trainer_spec, train_args)
    model = build(model_spec, model_args)
    # a model read from its default checkpoint (query-tiny's, inside the installed package)
    # names the folder only in its identity
    _check_out_apart_from_model(out, model.identity().get("checkpoint"))
    fresh = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = trainer.train(model, out)
    except BaseException as exc:
        if fresh and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run stopped by its own checks leaves no empty folder behind
        elif isinstance(exc, Exception) and not isinstance(exc, UserError) and hasattr(exc, "add_note"):
            exc.add_note(f"unisandbox: in trainer {trainer_name!r} ({trainer_spec.distribution} "
                         f"{trainer_spec.version}); what {out} holds is kept: run the same command "
                         "again to resume")
        raise
    if not isinstance(result, TrainResult):
        raise PluginError(f"{type(trainer).__name__}.train() returned {type(result).__name__}; expected "
                          "a TrainResult (unisandbox.protocols.TrainResult(checkpoint, metrics))")
    return result


def _check_out_apart_from_model(out: Path, source: Any) -> None:
    """A training folder that is, holds or sits inside the checkpoint being trained would have
    the run's checkpoints written over the weights it reads (a trainer's ``model/`` is a
    checkpoint folder name too)."""
    if not isinstance(source, str) or not source:
        return
    src, dst = Path(source).expanduser().resolve(), out.resolve()  # the factory expands ~, --out not
    if src == dst or src in dst.parents or dst in src.parents:
        raise UserError(f"--out {out} and the model's checkpoint {source} overlap: the run would "
                        "write its checkpoints where the model it trains is read from; give a "
                        "separate --out")


def _check_out_not_inside_a_run(out: Path) -> None:
    """A run's folder inside another's (a phase folder of a STARS run, say) would mix two
    runs' files; each run gets a folder of its own."""
    for parent in out.resolve().parents:
        if (parent / "trainer.json").is_file():
            raise UserError(f"--out {out} is inside the training run {parent} (its trainer.json); "
                            "give a folder of its own")


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT, or a SIGTERM outside torchrun) back until the block is done, then raise it: an optimizer step
    cut in the middle would leave some parameters updated and others not, and a state saved
    from there resumes into other weights than an uninterrupted run's. Off the main thread (where
    signals cannot be handled) it holds nothing back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM) if sigterm_stops_like_ctrl_c() else (signal.SIGINT,)
    previous = [signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held]
    try:
        yield
    finally:
        for s, handler in zip(held, previous, strict=True):
            signal.signal(s, handler)
    if caught:
        raise Terminated if caught[0] == signal.SIGTERM else KeyboardInterrupt
