"""Where G-think is lost on the sandbox model: in the reasoning or in the picture (issue 4).

Reads an engine run folder (``samples.jsonl`` of a think-mode evaluation with the ``glyph``
judge) and splits each task's think-mode items by whether the plan at the end of the
reasoning ("... so draw 3 red stars .") names the expected answer and whether the picture
shows what the plan names. G-think = plan right x picture follows a right plan (plus a few
lucky pictures), so this says which of the two bounds it.

    .venv/bin/python bench/think_plans.py RUN_DIR
    .venv/bin/python bench/think_plans.py runs/bench-stars-distill/stars/eval-base
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

PLAN = re.compile(r"so draw (.+?) \.")


def plan_of(think: str | None) -> str | None:
    """The last plan a reasoning ends on, in the sandbox corpus's words; None without one."""
    found = PLAN.findall(think or "")
    return found[-1] if found else None


def split(rows: list[dict]) -> dict[str, Counter]:
    """Per task (a folder may hold math and mapping at the same level): items, plan right,
    picture follows the plan, right, right with a right plan."""
    out: dict[str, Counter] = {}
    for row in rows:
        if row.get("mode") != "think" or row.get("level") is None:
            continue
        plan = plan_of(row.get("think"))
        c = out.setdefault(row.get("task") or f"level {row['level']}", Counter())
        c["items"] += 1
        c["plan_right"] += plan == row["expected"]
        c["follows_plan"] += plan is not None and row.get("description") == plan
        c["right"] += row["verdict"] == "yes"
        c["right_with_right_plan"] += plan == row["expected"] and row["verdict"] == "yes"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="an engine run folder with think-mode glyph-world items")
    args = ap.parse_args()
    path = args.run / "samples.jsonl"
    if not path.is_file():
        print(f"error: {path} does not exist (an `unisandbox eval ... --mode think` folder)", file=sys.stderr)
        return 2
    table = split([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    if not table:
        print(f"error: {path} holds no think-mode items with a level", file=sys.stderr)
        return 2
    print(f"{'task':10} {'items':>6} {'G-think':>8} {'plan right':>11} {'picture follows a right plan':>29}")
    for task, c in sorted(table.items()):
        follows = c["right_with_right_plan"] / c["plan_right"] if c["plan_right"] else 0.0
        print(f"{task:10} {c['items']:>6} {100 * c['right'] / c['items']:>8.1f} "
              f"{100 * c['plan_right'] / c['items']:>11.1f} {100 * follows:>29.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
