"""How fast the task generators are, and what the audit of the published files prints.

    .venv/bin/python bench/task_generation.py [N]

Prints items per second for each generator (N items of the test split, default 10,000; the
first call of math-1/-2 includes building its enumerated pool), and the label ceilings of the
published benchmark when ../shared/reference/unisandbox-official/benchmark is present.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from unisandbox.tasks.arith import MathTask
from unisandbox.tasks.audit import audit_paths
from unisandbox.tasks.knowledge import KnowledgeTask
from unisandbox.tasks.mapping import MappingTask

BENCH = Path(__file__).resolve().parents[2] / "shared" / "reference" / "unisandbox-official" / "benchmark"


def main(n: int) -> None:
    makers = {
        **{f"math-{lv}": (lambda lv=lv: MathTask(lv, n=n, world="glyph")) for lv in (1, 2, 3)},
        **{f"mapping-{lv}": (lambda lv=lv: MappingTask(lv, n=n // 2, world="glyph")) for lv in (1, 2, 3)},
        "knowledge-forward": lambda: KnowledgeTask("forward", n_characters=n // 3, world="glyph"),
        "knowledge-inverse": lambda: KnowledgeTask("inverse", n_characters=n // 2, world="glyph"),
    }
    print(f"{'task':<18} {'items':>7} {'seconds':>8} {'items/s':>9}")
    for name, make in makers.items():
        t0 = time.perf_counter()
        count = len(make().samples())
        dt = time.perf_counter() - t0
        print(f"{name:<18} {count:>7} {dt:>8.2f} {count / dt:>9.0f}")
    if BENCH.is_dir():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for policy in ("floor", "round", "exact"):
                t0 = time.perf_counter()
                results = audit_paths([BENCH], rounding=policy)
                dt = time.perf_counter() - t0
                cells = ", ".join(f"{Path(r.path).name} {100 * r.ceiling:.0f}" for r in results)
                print(f"audit ({policy}, {dt:.2f} s): ceilings % {cells}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=10_000, help="items per generator")
    main(parser.parse_args().n)
