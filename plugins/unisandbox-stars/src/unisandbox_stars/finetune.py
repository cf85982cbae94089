"""One fine-tuning loop for both trainers: one part of a model, resumable, data-parallel.

* **One part only.** Every parameter outside ``part`` gets ``requires_grad=False`` for the run
  (restored afterwards) and only ``part``'s parameters reach the optimizer, so the other part
  stays bit-identical.
* **Deterministic batches.** Step ``s`` takes examples ``s*B .. s*B+B-1`` of a stream of
  per-epoch permutations drawn from the seed; each gradient piece draws its noise from
  (seed, step, piece). Nothing depends on the number of processes or on where a run resumed.
* **Data-parallel.** Under torchrun each rank computes the pieces ``i % world == rank`` of the
  same global batch; gradients (weighted by piece size) are summed over ranks, so every rank
  takes the same optimizer step as one process would.
* **Resumable.** Every ``save_every`` steps the part's parameters and the optimizer state go to
  ``state/`` (a pointer file written last, atomically) and a model folder to
  ``checkpoints/step-N``; ``done.json`` marks a finished run, whose final parameters load back
  into the model when it is run again.

Folder: ``metrics.jsonl`` (one record per step), ``state/``, ``checkpoints/``, ``model/`` (the
final model folder, ``save_pretrained``), ``final.safetensors`` (the part's final parameters),
``done.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from unisandbox.distributed import Dist, get_dist
from unisandbox.errors import UserError
from unisandbox.progress import bar as progress_bar
from unisandbox.protocols import CapabilityError, Model
from unisandbox.run.seeds import sample_seed
from unisandbox.run.store import JsonlLog, atomic_write_json, read_object
from unisandbox.training import uninterrupted

from .options import FinetuneOptions, lr_factor, warmup_steps

PARTS = ("understanding", "generation")
#: loss_fn(batch, seed, step): the step lets a loss follow a schedule (STARS's ``internalize``)
LossFn = Callable[[Sequence[Any], int, int], torch.Tensor]


# --- which parameters ---------------------------------------------------------------------
def all_parameters(model: Model) -> list[torch.nn.Parameter]:
    """Every parameter the model holds: both parts plus any module it keeps as an attribute
    (an autoencoder that neither part trains, say)."""
    seen: dict[int, torch.nn.Parameter] = {}
    for part in PARTS:
        try:
            for p in model.trainable_parameters(part):
                seen.setdefault(id(p), p)
        except (CapabilityError, ValueError):
            pass
    for value in vars(model).values():
        if isinstance(value, torch.nn.Module):
            for p in value.parameters():
                seen.setdefault(id(p), p)
    return list(seen.values())


@contextmanager
def only_part(model: Model, part: str) -> Iterator[list[torch.nn.Parameter]]:
    """``part``'s parameters, with every other parameter frozen until the block ends."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    params = list(dict.fromkeys(model.trainable_parameters(part)))
    if not params:
        raise UserError(f"{type(model).__name__} has no {part} parameters to train")
    everything = all_parameters(model)
    before = [(p, p.requires_grad) for p in everything]
    mine = {id(p) for p in params}
    for p in everything:
        p.requires_grad_(id(p) in mine)
    for p in params:
        p.requires_grad_(True)
    try:
        yield params
    finally:
        for p, flag in before:
            p.requires_grad_(flag)


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).float() for t in tensors])


def unflat_(tensors: Sequence[torch.Tensor], buffer: torch.Tensor) -> None:
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(buffer[offset : offset + n].view_as(t).to(t.dtype))
        offset += n


def save_params(params: Sequence[torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({f"p{i}": p.detach().contiguous().cpu() for i, p in enumerate(params)}, str(tmp))
    tmp.replace(path)


@torch.no_grad()
def load_params(params: Sequence[torch.Tensor], path: Path) -> None:
    state = load_file(str(path))
    if len(state) != len(params):
        raise UserError(f"{path} holds {len(state)} tensors, the model part has {len(params)}; "
                        "was it written for another model?")
    for i, p in enumerate(params):
        saved = state[f"p{i}"]
        if saved.shape != p.shape:
            raise UserError(f"{path}: tensor {i} has shape {tuple(saved.shape)}, the model's "
                            f"{tuple(p.shape)}; was it written for another model?")
        p.copy_(saved.to(p.device, p.dtype))


# --- batches ------------------------------------------------------------------------------
class BatchStream:
    """Step ``s``'s global batch: positions s*B.. of a stream of per-epoch permutations."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._perms: dict[int, list[int]] = {}

    def _perm(self, epoch: int) -> list[int]:
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            order = list(range(self.n))
            random.Random(f"finetune:{self.seed}:{epoch}").shuffle(order)
            self._perms[epoch] = order
        return self._perms[epoch]

    def batch(self, step: int) -> list[int]:
        start = step * self.batch_size
        return [self._perm(p // self.n)[p % self.n] for p in range(start, start + self.batch_size)]


def pieces(batch: list[int], size: int) -> list[list[int]]:
    return [batch[i : i + size] for i in range(0, len(batch), size)]


def piece_seed(seed: int, step: int, piece: int) -> int:
    return sample_seed(seed, "finetune", f"step-{step}", f"piece-{piece}")


# --- the loop -----------------------------------------------------------------------------
def fingerprint(part: str, options: FinetuneOptions, data_key: str, n: int,
                legacy: bool = False) -> str:
    """What a run computes (its bookkeeping options left out); ``legacy``: the form folders
    written before that had, with them in, still accepted on resume."""
    opts = options.to_json() if legacy else options.identity()
    payload = json.dumps({"part": part, "options": opts, "data": data_key, "n": n}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def finetune(model: Model, part: str, examples: Sequence[Any], loss_fn: LossFn,
             options: FinetuneOptions, folder: Path, *, data_key: str, desc: str = "finetune",
             progress: bool = True, default_epochs: float = 1.0,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train ``part`` of ``model`` on ``examples`` with ``loss_fn(batch, seed, step)``; see the module
    docstring. Returns the run's metrics (also in ``done.json``)."""
    if not examples:
        raise UserError(f"{desc}: no training examples")
    dist = get_dist()
    say = log or (lambda m: print(m, file=sys.stderr))
    total = options.total_steps(len(examples), default_epochs)
    key = fingerprint(part, options, data_key, len(examples))
    keys = {key, fingerprint(part, options, data_key, len(examples), legacy=True)}
    done_path = folder / "done.json"
    with only_part(model, part) as params:
        if done_path.is_file():
            done = read_object(done_path, ("fingerprint", "metrics"))
            if done["fingerprint"] not in keys:
                raise UserError(f"{folder} holds a finished run with other settings or data; "
                                "use another output folder")
            _load_saved(folder / "final.safetensors", lambda path: load_params(params, path))
            return done["metrics"]
        # the optimizer steps fp32 copies of low-precision (bf16) parameters: an update of
        # lr 1e-5 is below bf16's resolution at most weights and would round away
        masters = master_copies(params) if options.master_weights else list(params)
        optimizer = torch.optim.AdamW(masters, lr=options.lr, weight_decay=options.weight_decay)
        start = _resume(masters, optimizer, folder, key, keys, total, say)
        if start == 0:
            _sync_start(dist, masters)
        copy_masters(params, masters)
        metrics = _loop(model, params, masters, optimizer, examples, loss_fn, options, folder,
                        total, start, dist, desc, progress and dist.is_main, say)
        if dist.is_main:
            save_params(params, folder / "final.safetensors")
            _save_model(model, folder / "model")
            atomic_write_json(done_path, {"fingerprint": key, "metrics": metrics})
        dist.barrier()
    return metrics


def master_copies(params: Sequence[torch.nn.Parameter]) -> list[torch.Tensor]:
    """What the optimizer steps: an fp32 copy of each low-precision parameter, the parameter
    itself when it is fp32 already (then nothing is copied and nothing changes)."""
    out = []
    for p in params:
        if p.dtype in (torch.float32, torch.float64):
            out.append(p)
        else:
            out.append(p.detach().float().clone().requires_grad_(True))
    return out


@torch.no_grad()
def copy_masters(params: Sequence[torch.Tensor], masters: Sequence[torch.Tensor]) -> None:
    """The model's parameters take the masters' values (rounded to their own dtype)."""
    for p, m in zip(params, masters, strict=True):
        if m is not p:
            p.copy_(m.to(p.dtype))


def _grads_to_masters(params: Sequence[torch.Tensor], masters: Sequence[torch.Tensor]) -> None:
    for p, m in zip(params, masters, strict=True):
        if m is not p:
            m.grad = None if p.grad is None else p.grad.float()
            p.grad = None


def _sync_start(dist: Dist, params: list[torch.nn.Parameter]) -> None:
    """Every rank starts from rank 0's parameters (as DistributedDataParallel does)."""
    if dist.world > 1:
        with torch.no_grad():
            buffer = flat(params)
            dist.broadcast(buffer, 0)
            unflat_(params, buffer)


def _loop(model: Model, params: list[torch.nn.Parameter], masters: list[torch.Tensor],
          optimizer: torch.optim.Optimizer, examples: Sequence[Any], loss_fn: LossFn,
          options: FinetuneOptions, folder: Path, total: int, start: int, dist: Dist, desc: str,
          show: bool, say: Callable[[str], None]) -> dict[str, Any]:
    stream = BatchStream(len(examples), options.batch_size, options.seed)
    warm = warmup_steps(options.warmup, total)
    size = options.micro_size(dist.world)
    metrics_log = JsonlLog(folder / "metrics.jsonl")
    if dist.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        metrics_log.repair()
        # steps logged after the state this run resumes from are taken again: their records go
        kept = metrics_log.keep(lambda r: isinstance(r, dict) and isinstance(r.get("step"), int)
                                and r["step"] < start)
        if kept and start == 0:
            say(f"{desc}: no saved state to resume from: starting over at step 0")
    pending: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    bar = progress_bar(total, desc, "step", show, initial=start)
    done = saved = start  # steps whose update is in the parameters; the last saved state's
    try:
        for step in range(start, total):
            lr = options.lr * lr_factor(step, total, warm, options.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)  # the masters' (_grads_to_masters clears the rest)
            batch = stream.batch(step)
            local_loss, bad = 0.0, 0.0
            for i, piece in enumerate(pieces(batch, size)):
                if i % dist.world != dist.rank:
                    continue
                loss = loss_fn([examples[j] for j in piece], piece_seed(options.seed, step, i), step)
                if not torch.isfinite(loss):  # said after the reduce, by every rank at once
                    bad += 1
                    continue
                weight = len(piece) / len(batch)
                (loss * weight).backward()
                local_loss += loss.item() * weight
            step_loss, bad = _reduce(dist, params, local_loss, bad)
            if bad:
                if dist.is_main:
                    metrics_log.append(pending)
                raise UserError(f"{desc}: the loss is not finite (nan or inf) at step {step}; "
                                f"lower lr (now {options.lr:g}) or set max_grad_norm, with another "
                                "--out (a run's settings are fixed); the steps before it are in "
                                "metrics.jsonl")
            _grads_to_masters(params, masters)
            grad_norm = None
            if options.max_grad_norm is not None:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(masters, options.max_grad_norm))
            record = {"step": step, "loss": round(step_loss, 6), "lr": lr,
                      "seconds": round(time.perf_counter() - t0, 2)}
            if grad_norm is not None:
                record["grad_norm"] = round(grad_norm, 4)
            with uninterrupted():  # an update is applied whole (masters and copies) or not at all
                optimizer.step()
                copy_masters(params, masters)
                done = step + 1  # the update is in the parameters now, its record in pending:
                pending.append(record)  # a Ctrl-C held back till here saves both
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", refresh=False)
            last = step == total - 1
            saving = bool(options.save_every) and (step + 1) % options.save_every == 0 and not last
            if dist.is_main and (len(pending) >= options.log_every or last or saving):
                metrics_log.append(pending)  # before a state is saved: a resumed log has no gap
                pending = []
            if saving:
                _save_state(model, masters, optimizer, folder, step + 1, dist)
                saved = step + 1
    except KeyboardInterrupt:
        # Ctrl-C (or a scheduler's SIGINT): keep the steps taken since the last state
        if dist.world == 1 and done > saved:
            metrics_log.append([r for r in pending if r["step"] < done])
            _save_state(model, masters, optimizer, folder, done, dist, checkpoint=False)
            print(f"\n{desc}: interrupted; state saved at step {done}: run the same command "
                  "to resume", file=sys.stderr)
        raise
    bar.close()
    if dist.is_main and pending:
        metrics_log.append(pending)
    losses = {r["step"]: r["loss"] for r in metrics_log.read()} if dist.is_main else {}
    ordered = [losses[s] for s in sorted(losses)]
    tail = max(1, math.ceil(0.1 * len(ordered))) if ordered else 0
    return {"steps": total, "examples": len(examples), "warmup_steps": warm,
            "batch_size": options.batch_size, "micro_batch": size, "world_size": dist.world,
            "lr": options.lr, "schedule": options.schedule,
            "loss_first": ordered[0] if ordered else None,
            "loss_last": round(sum(ordered[-tail:]) / tail, 6) if ordered else None,
            "seconds": round(time.perf_counter() - t0, 1), "resumed_at": start}


def _reduce(dist: Dist, params: list[torch.nn.Parameter], local_loss: float,
            bad: float) -> tuple[float, float]:
    """Sum gradients, the loss and the count of non-finite losses over ranks; a rank without
    a piece contributes zeros."""
    if dist.world == 1:
        return local_loss, bad
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    grad_buffer = flat(grads)
    buffer = torch.cat([grad_buffer, torch.tensor([local_loss, bad], device=grad_buffer.device)])
    dist.all_reduce_sum(buffer)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if p.grad is None:
                p.grad = g
        unflat_([p.grad for p in params], buffer[:-2])
    return float(buffer[-2]), float(buffer[-1])


# --- state --------------------------------------------------------------------------------
def _save_model(model: Model, path: Path) -> None:
    """A model folder, complete or absent: written beside and renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _save_state(model: Model, params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                folder: Path, step: int, dist: Dist, checkpoint: bool = True) -> None:
    """Parameters and optimizer under step-numbered names, then the pointer (atomic), then
    the older files go: a crash at any point leaves one complete state. ``checkpoint``: also a
    model folder ``checkpoints/step-N`` (not for the state an interrupt saves)."""
    if dist.is_main:
        state = folder / "state"
        state.mkdir(parents=True, exist_ok=True)
        save_params(params, state / f"params-{step}.safetensors")
        tmp = state / f".optimizer-{step}.pt.tmp"
        torch.save(optimizer.state_dict(), tmp)
        tmp.replace(state / f"optimizer-{step}.pt")
        previous = _latest(folder)
        atomic_write_json(state / "latest.json", {"step": step})
        if previous is not None and previous != step:
            (state / f"params-{previous}.safetensors").unlink(missing_ok=True)
            (state / f"optimizer-{previous}.pt").unlink(missing_ok=True)
        if checkpoint:
            _save_model(model, folder / "checkpoints" / f"step-{step}")
    dist.barrier()


def _latest(folder: Path) -> int | None:
    path = folder / "state" / "latest.json"
    if not path.is_file():
        return None
    step = read_object(path, ("step",))["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UserError(f"{path}: field 'step' must be a step number, got {step!r}; the run "
                        "folder is damaged: use another --out")
    return step


def _resume(params: list[torch.Tensor], optimizer: torch.optim.Optimizer, folder: Path,
            key: str, keys: set[str], total: int, say: Callable[[str], None]) -> int:
    """The step to start at: 0 for a fresh folder, else the last saved state's step. ``key``
    marks a new folder; ``keys`` are the marks it may already hold (the legacy form too)."""
    dist = get_dist()
    mark = folder / "finetune.json"
    if mark.is_file():
        if read_object(mark, ("fingerprint",))["fingerprint"] not in keys:
            raise UserError(f"{folder} holds a run with other settings or data; resume only "
                            "with the same ones, or use another output folder")
    elif dist.is_main:
        atomic_write_json(mark, {"fingerprint": key})
    dist.barrier()
    step = _latest(folder)
    if step is None:
        return 0
    if step > total:
        raise UserError(f"{folder / 'state' / 'latest.json'}: step {step} is past the run's "
                        f"{total} steps; the run folder is damaged: use another --out")
    state = folder / "state"
    _load_saved(state / f"params-{step}.safetensors", lambda path: load_params(params, path))
    _load_saved(state / f"optimizer-{step}.pt", lambda path: optimizer.load_state_dict(
        torch.load(path, weights_only=True)))
    say(f"resuming {folder} at step {step}")
    return step


def _load_saved(path: Path, load: Callable[[Path], Any]) -> None:
    """Load a saved state or final file; missing or unreadable is an error naming it."""
    if not path.is_file():
        raise UserError(f"{path}: missing, though the run's markers name it; the run folder is "
                        "damaged: use another --out")
    try:
        load(path)
    except UserError:
        raise
    except Exception as exc:  # safetensors' and torch's own errors for a damaged file
        raise UserError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:120]}); the "
                        "run folder is damaged: use another --out") from None
