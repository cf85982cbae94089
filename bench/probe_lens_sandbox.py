"""The logit lens on the sandbox model: math 1-3 and knowledge, normal and think, per layer.

Runs ``probe-lens`` once over all five tasks (glyph world) and prints, per task, mode and
layer, the mean probability of each item's answer at the query tokens (mean and best query),
at the baseline (the last text token before the queries) and, as the control, the other items'
answers at the same queries. ``--from DIR`` only prints an existing probe-lens folder.

    .venv/bin/python bench/probe_lens_sandbox.py --model-path ~/.cache/unisandbox/query-tiny-*/model \\
        --out runs/probe-lens-sandbox
    .venv/bin/python bench/probe_lens_sandbox.py --from runs/probe-lens-sandbox
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

TASKS = "math-1,math-2,math-3,knowledge-forward,knowledge-inverse"


def run(model_path: str, out: Path, threads: int | None) -> None:
    from unisandbox.run.config import Component
    from unisandbox.run.probe import run_probe

    args = {"path": model_path, **({"threads": threads} if threads else {})}
    start = time.perf_counter()
    run_probe(Component("probe-lens", {"task": TASKS, "world": "glyph"}), out,
              model=Component("query-tiny", args), modes=("normal", "think"), progress=True)
    print(f"probe-lens over {TASKS}: {time.perf_counter() - start:.0f} s -> {out}")


def show(folder: Path) -> None:
    result = json.loads((folder / "probe.json").read_text())
    print(f"model: {result['model'].get('checkpoint')}")
    for c in result["cells"]:
        s, k = c["per_layer"], c.get("per_layer_control", {})
        print(f"\n{c['task']} level {c['level']}, {c['mode']} (n={c['n']}, uniform "
              f"{c['chance']['relevant']:.4f}, relevant = {'/'.join(c['relevant_group'])})")
        print("layer  queries mean  best query       baseline  other answers (queries)  "
              "queries / baseline")
        for layer in range(len(s["baseline"])):
            q, b = s["queries_mean"][layer], s["baseline"][layer]
            ctrl = k.get("queries_mean", [None] * (layer + 1))[layer]
            ratio = f"{q / b:.2f}" if b >= 1e-3 else "-"  # no ratio to a near-zero baseline
            print(f"{layer:>5}  {q:12.4f}  {s['queries_max'][layer]:.4f} ({s['queries_argmax'][layer]:>3})"
                  f"  {b:8.4f}  {'-' if ctrl is None else f'{ctrl:.4f}':>23}  {ratio:>18}")
    for row in result.get("rows", []):
        n = len(row["query"])
        q, b = sum(row["query"]) / n, sum(row["baseline"]) / n
        ctrl = sum(row["control"]) / n if "control" in row else None
        print(f"rows {row['task']:<17} {row['mode']:<6} n={n:<3} query {q:.4f} (layer "
              f"{row['layer_query']})  baseline {b:.4f} (layer {row['layer_baseline']})"
              + ("" if ctrl is None else f"  other answers {ctrl:.4f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", help="a query-tiny checkpoint folder (config.json, model.safetensors)")
    parser.add_argument("--out", type=Path, default=Path("runs/probe-lens-sandbox"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--from", dest="source", type=Path, help="print an existing probe-lens folder")
    args = parser.parse_args()
    if args.source is None:
        if not args.model_path:
            parser.error("give --model-path (a pretrained sandbox checkpoint) or --from DIR")
        run(args.model_path, args.out, args.threads)
    show(args.source or args.out)


if __name__ == "__main__":
    main()
