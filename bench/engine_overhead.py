"""Engine overhead: the same model, the same 1,000 samples, through the engine vs a bare loop.

The bare loop generates in the same batches and judges in memory (no files, no log); the
engine also writes every PNG atomically, appends samples.jsonl with an fsync per batch,
keeps the judge cache and aggregates. The ratio engine / bare is the overhead (goal <= 1.05).

    .venv/bin/python bench/engine_overhead.py                      # the sandbox model (untrained)
    .venv/bin/python bench/engine_overhead.py --model glyph-oracle # a model that costs nothing
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from unisandbox.factories import build
from unisandbox.records import GenerationRequest
from unisandbox.registry import get_registry
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner, chunks
from unisandbox.run.seeds import sample_seed
from unisandbox.world.glyph_draw import matches, parse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="query-tiny")
    ap.add_argument("--model-arg", action="append", default=[], help="k=v (default for query-tiny: init=scratch)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2, help="alternate bare/engine this many times")
    args = ap.parse_args()
    model_args = dict(a.split("=", 1) for a in args.model_arg)
    if args.model == "query-tiny" and not model_args:
        model_args = {"init": "scratch"}
    registry = get_registry()
    model = build(registry.model(args.model), model_args)
    task = build(registry.task("math-1"), {"world": "glyph", "n": args.n})
    samples = list(task.samples())
    model.generate([GenerationRequest(samples[0].prompt, "normal", 0)])  # warm-up

    def bare() -> float:
        t0 = time.perf_counter()
        right = 0
        for batch in chunks(samples, args.batch_size):
            requests = [GenerationRequest(s.prompt, "normal", sample_seed(0, task.name, s.id, "normal"))
                        for s in batch]
            for s, g in zip(batch, model.generate(requests), strict=True):
                right += matches(parse(g.image), s.target)
        return time.perf_counter() - t0

    def engine() -> float:
        out = Path(tempfile.mkdtemp(prefix="engine-overhead-"))
        config = RunConfig(model=Component(args.model, model_args),
                           tasks=(Component("math-1", {"world": "glyph", "n": args.n}),),
                           judge=Component("glyph"), out=out, modes=("normal",),
                           understanding=False, batch_size=args.batch_size)
        t0 = time.perf_counter()
        Runner(config, registry=registry, model=model, progress=False, log=lambda m: None).run()
        elapsed = time.perf_counter() - t0
        shutil.rmtree(out)
        return elapsed

    times: dict[str, list[float]] = {"bare": [], "engine": []}
    for _ in range(args.repeats):
        times["bare"].append(bare())
        times["engine"].append(engine())
    b, e = min(times["bare"]), min(times["engine"])
    print(f"model {args.model}, {args.n} samples, batch {args.batch_size} (best of {args.repeats})")
    print(f"bare loop : {b:7.2f} s  ({args.n / b:7.1f} samples/s)")
    print(f"engine    : {e:7.2f} s  ({args.n / e:7.1f} samples/s)")
    print(f"overhead ratio engine / bare: {e / b:.3f}  (goal <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
