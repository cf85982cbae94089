"""How often a prompt's k think-mode candidates are right, with greedy vs sampled reasoning
(STARS's ``think_temperature``; issue 7).

Stage I of STARS draws k candidates per TRAIN prompt. With greedy reasoning they share one
reasoning and differ only in the image noise, so rejection sampling can keep or drop that
reasoning but not choose among attempts. This prints, per level and temperature, over the
same candidates stage I would draw (seed 0, the same per-candidate seeds), judged by the exact
glyph parser: pass@1 (candidate 0 right), the mean accuracy of a candidate (what an unfiltered
run trains on) and pass@k (at least one right: what a perfect filter could keep).

    .venv/bin/python bench/think_sampling.py                 # shipped checkpoint, 200 prompts, k=4
    .venv/bin/python bench/think_sampling.py --temperatures 0,0.5,1 --levels 3 --n 200 --k 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from unisandbox.factories import build
from unisandbox.records import GenerationRequest
from unisandbox.registry import get_registry
from unisandbox.run.seeds import sample_seed
from unisandbox.world import glyph_draw


def right(image: object, target: dict) -> bool:
    return glyph_draw.matches(glyph_draw.parse(glyph_draw.as_array(image)), target)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, help="sandbox model folder (default: the shipped query-tiny)")
    ap.add_argument("--levels", default="1,2,3", help="math levels, comma-separated")
    ap.add_argument("--temperatures", default="0,0.5,1", help="reasoning temperatures (0: greedy)")
    ap.add_argument("--n", type=int, default=200, help="TRAIN prompts per level")
    ap.add_argument("--k", type=int, default=4, help="candidates per prompt")
    ap.add_argument("--threads", type=int, help="torch threads")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    temperatures = [float(x) for x in args.temperatures.split(",") if x.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)
    from unisandbox_query.factories import default_checkpoint
    from unisandbox_query.model import QueryModel

    checkpoint = args.checkpoint or default_checkpoint()
    model = QueryModel.from_pretrained(checkpoint)
    print(f"checkpoint: {checkpoint}; {args.n} TRAIN prompts per level, k={args.k}")
    print(f"{'level':>5} {'T':>5} {'pass@1':>7} {'mean':>6} {f'pass@{args.k}':>7} {'seconds':>8}")
    registry = get_registry()
    for level in levels:
        task = build(registry.task(f"math-{level}"), {"world": "glyph", "split": "train", "n": args.n})
        samples = task.samples()
        for temperature in temperatures:
            t0 = time.perf_counter()
            hits = []
            for k in range(args.k):
                requests = [GenerationRequest(s.prompt, "think",
                                              sample_seed(0, task.name, s.id, f"stars-r1-k{k}"),
                                              temperature=temperature) for s in samples]
                hits.append([right(g.image, dict(s.target))
                             for g, s in zip(model.generate(requests), samples, strict=True)])
            n = len(samples)
            pass1 = sum(hits[0]) / n
            mean = sum(map(sum, hits)) / (args.k * n)
            pass_k = sum(any(h[i] for h in hits) for i in range(n)) / n
            print(f"{level:>5} {temperature:>5.2f} {100 * pass1:>7.1f} {100 * mean:>6.1f} "
                  f"{100 * pass_k:>7.1f} {time.perf_counter() - t0:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
