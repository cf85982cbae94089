"""How long `unisandbox report` takes on a large run, and how big report.html gets.

Builds a synthetic run folder (TASKS tasks x ITEMS items, normal + think + understanding
records, 1024-px photo-like images hard-linked so the folder is cheap) and times write_report.

    .venv/bin/python bench/report_speed.py [ITEMS] [TASKS]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from unisandbox.report import write_report
from unisandbox.run.aggregate import summarise


def make_run(root: Path, items: int, tasks: int) -> int:
    rng = np.random.default_rng(0)
    photo = root / "photo.png"
    # smooth noise: compresses like a photograph, not like a flat sandbox glyph
    small = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(small).resize((1024, 1024), Image.Resampling.BICUBIC).save(photo)
    names = [f"task-{t}" for t in range(tasks)]
    records, results = [], {"modes": ["normal", "think"], "scoring": "default", "tasks": {}}
    for name in names:
        labels: dict[str, list[str]] = {"normal": [], "think": [], "understanding": []}
        for i in range(items):
            sid = str(i + 1)
            for mode in ("normal", "think"):
                image = root / "images" / name / mode / f"{sid}.png"
                image.parent.mkdir(parents=True, exist_ok=True)
                os.link(photo, image)
                verdict = "yes" if rng.random() < (0.3 if mode == "normal" else 0.7) else "no"
                labels[mode].append(verdict)
                records.append({"task": name, "mode": mode, "id": sid, "level": 1 + i % 3,
                                "group": None, "prompt": f"draw item {sid}", "expected": "x",
                                "image": f"images/{name}/{mode}/{sid}.png", "verdict": verdict,
                                "think": "reasoning " * 40 if mode == "think" else None,
                                "judge_raw": "{}", "description": "x"})
            verdict = "yes" if rng.random() < 0.9 else "no"
            labels["understanding"].append(verdict)
            records.append({"task": name, "mode": "understanding", "id": sid, "level": 1 + i % 3,
                            "group": None, "question": "q?", "reply": "a", "expected": "a",
                            "verdict": verdict})
        levels: dict[str, dict] = {}
        for level in ("1", "2", "3", "all"):
            pick = [i for i in range(items) if level == "all" or 1 + i % 3 == int(level)]
            cells = {m: summarise([v[i] for i in pick], False) for m, v in labels.items()}
            cells["gap"] = {m: cells["understanding"]["accuracy"] - cells[m]["accuracy"]
                            for m in ("normal", "think")}
            levels[level] = cells
        results["tasks"][name] = {"family": "math", "unit": "item", "chance": 0.2, "levels": levels}
    (root / "config.json").write_text(json.dumps({"run": {"model": {"name": "synthetic"},
                                                          "tasks": [{"name": n} for n in names]}}))
    (root / "results.json").write_text(json.dumps(results))
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return len(records)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("items", type=int, nargs="?", default=5000, help="items per task")
    ap.add_argument("tasks", type=int, nargs="?", default=6, help="tasks")
    args = ap.parse_args()
    items, tasks = args.items, args.tasks
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        n = make_run(run, items, tasks)
        t0 = time.perf_counter()
        write_report([run], run / "report")
        took = time.perf_counter() - t0
        size = (run / "report" / "report.html").stat().st_size
        print(f"{tasks} tasks x {items} items ({n} records, 1024-px images): report in "
              f"{took:.2f} s, report.html {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
