"""Speed levers for the sandbox model on a CPU, measured rather than assumed (issue 4's time and
batching targets; docs/sandbox-model.md has the figures):

* pretraining steps at the default recipe's batch sizes, fp32 with every thread, vs bf16
  autocast, vs two processes at once, each on one thread and half the batch (what two
  data-parallel processes would do, all-reduce not counted);
* sampling 64 and 256 prompts at once and one at a time, with the denoiser in fp32 and in bf16
  (``--model-arg precision=bfloat16``).

    .venv/bin/python bench/cpu_levers.py                 # 40 steps of each kind
    .venv/bin/python bench/cpu_levers.py --steps 20 --checkpoint DIR
    .venv/bin/python bench/cpu_levers.py --only sampling   # the sampling figures alone (~1 min)
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

SHIPPED = "plugins/unisandbox-query/src/unisandbox_query/pretrained/query-tiny"


def step_seconds(text_steps: int, joint_steps: int, threads: int, bf16: bool = False,
                 **recipe: Any) -> float:
    """Seconds per step of a from-scratch sandbox pretraining run of only these steps (no
    curriculum unless given: the text steps timed are the mix's)."""
    recipe.setdefault("curriculum", ())
    from unisandbox_query.sandbox.pretrain import SandboxPretrain, scratch_model

    torch.set_num_threads(threads)
    trainer = SandboxPretrain(progress=False, checkpoint_every=0, text_steps=text_steps,
                              joint_steps=joint_steps, **recipe)
    model = scratch_model(trainer.recipe)
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with cast, tempfile.TemporaryDirectory() as out:
        seconds = trainer.train(model, Path(out)).metrics["seconds"]
    return seconds / (text_steps + joint_steps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="steps of each kind to time")
    ap.add_argument("--checkpoint", default=SHIPPED, help="model folder for the sampling figures")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--only", choices=("steps", "sampling"), help="measure only these figures")
    args = ap.parse_args()
    if args.steps < 1 or args.threads < 1:
        ap.error("--steps and --threads must be at least 1")
    if not Path(args.checkpoint).is_dir():
        ap.error(f"--checkpoint {args.checkpoint}: no such folder")
    n, threads = args.steps, args.threads
    from unisandbox_query.sandbox.pretrain import Recipe

    half = {k: getattr(Recipe(), k) // 2 for k in ("batch_size", "text_tokens", "text_batch_size")}
    kinds = {} if args.only == "sampling" else {"text": (n, 0), "joint": (0, n)}
    if kinds:
        print(f"seconds per step ({n} steps each; {threads} threads unless said):")
    for kind, (text, joint) in kinds.items():
        fp32 = step_seconds(text, joint, threads)
        bf16 = step_seconds(text, joint, threads, bf16=True)
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            pair = [f.result() for f in [pool.submit(step_seconds, text, joint, 1, **half)
                                         for _ in range(2)]]
        print(f"  {kind:5} fp32 {fp32:.3f}   bf16 autocast {bf16:.3f}   "
              f"2 processes x half batch x 1 thread {max(pair):.3f}", flush=True)
    torch.set_num_threads(threads)
    if args.only == "steps":
        return 0
    print("sampling, images/s (64 / 256 prompts in one call; one prompt per call):")
    from sandbox_model import sampling_speed
    from unisandbox_query.model import QueryModel

    for precision in ("float32", "bfloat16"):  # --model-arg precision=...: the denoiser's dtype
        model = QueryModel.from_pretrained(args.checkpoint, precision=precision)
        batched, single = sampling_speed(model, 64)
        larger, _ = sampling_speed(model, 256)
        print(f"  {precision:9} {batched:6.1f} / {larger:6.1f}; {single:5.1f}  "
              f"({batched / single:.1f}x / {larger / single:.1f}x)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
