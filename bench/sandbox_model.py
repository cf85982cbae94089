"""The sandbox model's figures (issue 4): pretraining time, direct prompts, U, describing images,
the self filter on exact renders (right picture vs near miss), the gap on the glyph-world test
sets through the engine, and batched sampling speed.

    .venv/bin/python bench/sandbox_model.py                  # pretrain with the default recipe
    .venv/bin/python bench/sandbox_model.py --checkpoint DIR  # measure an existing checkpoint
    .venv/bin/python bench/sandbox_model.py --checkpoint DIR --precision bfloat16 --sample-batch 256
    .venv/bin/python bench/sandbox_model.py --recipe '{"seed": 1, "key_tokens": true}'   # another recipe

Prints every figure; writes them as JSON to --out/figures.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from unisandbox.records import GenerationRequest
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner

TASKS = ("math-1", "math-2", "math-3", "mapping-1", "mapping-2", "mapping-3")


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}"


def sampling_speed(model: Any, batch: int = 64, rounds: int = 3) -> tuple[float, float]:
    """Images per second: ``batch`` prompts in one call, and 16 prompts one call each (after a
    warm-up call, so one-off start-up costs are in neither); the median of ``rounds`` rounds
    that alternate the two, so a busy moment on the machine does not decide the ratio."""
    from unisandbox_query.sandbox.corpus import TEMPLATES

    requests = [GenerationRequest(TEMPLATES[0].format(p="3 red stars"), "normal", i) for i in range(batch)]
    model.batch_size = batch
    model.generate(requests[:2])
    batched, single = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        model.generate(requests)
        batched.append(len(requests) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for r in requests[:16]:
            model.generate([r])
        single.append(16 / (time.perf_counter() - t0))
    return statistics.median(batched), statistics.median(single)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, help="measure this model folder instead of pretraining")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-sandbox"))
    ap.add_argument("--n", type=int, default=50, help="test items (pairs for mapping) per task")
    ap.add_argument("--text-steps", type=int, default=None, help="override the recipe's text steps")
    ap.add_argument("--joint-steps", type=int, default=None, help="override the recipe's joint steps")
    ap.add_argument("--recipe", default=None, help="JSON: any other recipe fields, e.g. "
                    "'{\"seed\": 1, \"key_tokens\": true}' (the model starts from the recipe's own seed)")
    ap.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                    help="the denoiser's precision at sampling (every image measured, and the speed)")
    ap.add_argument("--sample-batch", type=int, default=64, help="prompts per call when timing batched sampling")
    ap.add_argument("--draws", type=int, default=5,
                    help="pictures per direct prompt (other seeds): 46 held-out targets drawn once "
                    "move the figure 2 points a picture")
    args = ap.parse_args()
    if args.draws < 1:
        ap.error("--draws must be at least 1")
    if args.sample_batch < 16:
        ap.error("--sample-batch must be at least 16 (the one-at-a-time figure times 16 prompts)")

    from unisandbox_query.model import QueryModel
    from unisandbox_query.sandbox.corpus import TEMPLATES
    from unisandbox_query.sandbox.evaluate import (
        describe_accuracy,
        direct_accuracy,
        self_filter_accuracy,
    )
    from unisandbox_query.sandbox.pretrain import (
        Recipe,
        SandboxPretrain,
        build_corpus,
        scratch_model,
    )

    figures: dict = {}
    overrides = {k: v for k, v in (("text_steps", args.text_steps), ("joint_steps", args.joint_steps))
                 if v is not None}
    try:
        overrides.update(json.loads(args.recipe) if args.recipe else {})
        recipe = Recipe(**overrides)
    except (ValueError, TypeError) as e:  # bad JSON, an unknown field, a bad value
        ap.error(f"--recipe: {e}")
    if args.checkpoint is None:
        t0 = time.perf_counter()
        result = SandboxPretrain(**overrides).train(scratch_model(recipe), args.out / "pretrain")
        figures["pretrain_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"pretraining: {figures['pretrain_seconds']} s for {recipe.steps} steps (recipe {recipe.digest()})")
        checkpoint = result.checkpoint
    else:
        checkpoint = args.checkpoint
    model = QueryModel.from_pretrained(checkpoint, precision=args.precision)
    corpus = build_corpus(recipe)

    held = direct_accuracy(model, corpus.held_out_targets, draws=args.draws)
    seen = direct_accuracy(model, corpus.train_targets[::4], template=TEMPLATES[0], seed=1, draws=args.draws)
    figures["direct_held_out"], figures["direct_seen"] = held, seen
    print(f"direct prompts, held-out targets + held-out template: {pct(held['accuracy'])} % (n={held['n']}: "
          f"{len(corpus.held_out_targets)} targets x {args.draws} draws) "
          + ", ".join(f"{k} {pct(v['accuracy'])}" for k, v in held.items() if isinstance(v, dict))
          + (f"; one draw each {pct(held['per_draw'][0])} %" if args.draws > 1 else ""))
    print(f"direct prompts, trained targets: {pct(seen['accuracy'])} % (n={seen['n']})")

    desc = describe_accuracy(model, corpus.held_out_targets + corpus.train_targets[::6])
    figures["describe"] = desc
    print(f"describing rendered images: {pct(desc['accuracy'])} % (n={desc['n']}) "
          + ", ".join(f"{k} {pct(v['accuracy'])}" for k, v in desc.items() if isinstance(v, dict)))

    from unisandbox.factories import build
    from unisandbox.registry import get_registry

    reg = get_registry()
    math_tasks = {name: build(reg.task(name), {"world": "glyph", "n": args.n}) for name in TASKS[:3]}
    for mode in ("verdict", "consistency"):
        judged = self_filter_accuracy(model, list(math_tasks.values()), args.out / f"self-filter-{mode}",
                                      mode=mode)
        figures["self_filter" if mode == "verdict" else "self_filter_consistency"] = judged
        print(f"self filter ({mode}) on exact renders (YES to the right picture / YES to a near miss): "
              + ", ".join(f"{name} {pct(v['yes_right'])} / {pct(v['yes_near_miss'])}" for name, v in judged.items()))

    config = RunConfig(model=Component("query", {"path": str(checkpoint), "precision": args.precision}),
                       tasks=tuple(Component(t, {"world": "glyph", "n": args.n}) for t in TASKS),
                       judge=Component("glyph"), out=args.out / "eval", batch_size=64)
    t0 = time.perf_counter()
    results = Runner(config, model=model, progress=True).run()
    figures["eval_seconds"] = round(time.perf_counter() - t0, 1)
    figures["tasks"] = results["tasks"]
    print(f"\nengine run over {len(TASKS)} tasks: {figures['eval_seconds']} s")
    print(f"{'task':10} {'U':>6} {'G-normal (95% CI)':>22} {'G-think (95% CI)':>22} {'chance':>7}")
    for task, entry in results["tasks"].items():
        cell = entry["levels"]["all"]
        u = cell["understanding"]["accuracy"]
        row = [f"{pct(cell[m]['accuracy'])} [{pct(cell[m]['ci95'][0])},{pct(cell[m]['ci95'][1])}]"
               for m in ("normal", "think")]
        print(f"{task:10} {pct(u):>6} {row[0]:>22} {row[1]:>22} {pct(entry['chance']):>7}")

    batched, single = sampling_speed(model, args.sample_batch)
    figures["sampling"] = {"precision": args.precision, "batch": args.sample_batch,
                           "batched_images_per_s": round(batched, 1), "single_images_per_s": round(single, 1),
                           "speedup": round(batched / single, 1)}
    print(f"\nsampling ({args.precision}): batched ({args.sample_batch} a call) {batched:.1f} images/s, "
          f"one at a time {single:.1f} images/s, speed-up {batched / single:.1f}x")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
