"""Judge throughput: ``vlm-openai`` against a loopback chat-completions server.

The server (tests/judges_loopback.py, in its own process so it does not share the client's
GIL) answers every call after a fixed latency (default 50 ms). Each item costs two calls
(describe, then compare), so with W workers the ideal is W / (2 x latency) items/s. Printed:

1. the judge alone on all items in one call: items/s and the ratio to the ideal (goal >= 0.8);
2. the same in calls of 32 items (how ``score_images`` batches), which adds a wait for the
   slowest item of each batch;
3. ``score_images`` on a run folder of the same images (batches of 32, the verdict cache,
   samples.jsonl, results.json and evaluation_results.csv included);
4. re-scoring that run with the same judge: served from the cache, with the calls it made.

Usage: .venv/bin/python bench/judge_throughput.py [--items 1000] [--workers 32] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "core")]

TASK_MODULE = '''
from unisandbox.hookspecs import hookimpl
from unisandbox.protocols import Task
from unisandbox.records import Sample
from unisandbox.specs import TaskSpec

PLUGIN_API_VERSION = 1


class BenchTask(Task):
    name = "bench-count"
    family = "math"

    def __init__(self, n=1000):
        self._samples = [Sample(id=str(i), prompt=f"Draw 3 circles ({i}).", answer="3 circles")
                         for i in range(n)]

    def samples(self):
        return self._samples


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="bench-count", factory=BenchTask, description="bench"))
'''


def serve(latency: float, ports: mp.Queue, stop: mp.Event, counts: mp.Queue) -> None:
    from judges_loopback import ChatServer, Scripted, completion, image_of

    def script(request, n):
        return Scripted(completion("Caption: 3 circles" if image_of(request) is not None
                                   else "They match.\nScore: YES"))

    with ChatServer(script, latency=latency) as server:
        ports.put(server.url)
        while not stop.wait(0.05):
            counts.put(len(server.posts)) if counts.empty() else None
        counts.put(len(server.posts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()

    from PIL import Image
    from unisandbox.judges.openai import OpenAIJudge
    from unisandbox.records import JudgeItem
    from unisandbox.registry import get_registry
    from unisandbox.run.scoring import score_images
    from unisandbox.testing import write_dist

    ctx = mp.get_context("spawn")
    ports, counts, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    server = ctx.Process(target=serve, args=(args.latency, ports, stop, counts), daemon=True)
    server.start()
    url = ports.get(timeout=60)

    def calls_so_far() -> int:
        value = 0
        while not counts.empty():
            value = counts.get()
        time.sleep(0.15)
        while not counts.empty():
            value = counts.get()
        return value

    ideal = args.workers / (2 * args.latency)
    with tempfile.TemporaryDirectory(prefix="judge-bench-") as tmp:
        tmp_path = Path(tmp)
        site = write_dist(tmp_path / "site", "bench-judges", "0", {"bench_judges": TASK_MODULE},
                          {"bench": "bench_judges"})
        sys.path.insert(0, str(site))
        get_registry(reload=True)
        run = tmp_path / "run"
        folder = run / "images" / "bench-count" / "normal"
        folder.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"kind": "bench"}))
        for i in range(args.items):  # distinct images, so no two share a cache key
            image = Image.new("RGB", (32, 32), "white")
            image.putpixel((0, 0), (i % 256, i // 256, 0))
            image.save(folder / f"{i}.png")
        judge_args = {"model": "bench-vlm", "base_url": url, "concurrency": args.workers}

        judge = OpenAIJudge(**judge_args)
        from unisandbox.records import Sample

        items = [JudgeItem("bench-count", "math", Sample(id=str(i), prompt="p", answer="3 circles"),
                           folder / f"{i}.png") for i in range(args.items)]
        judge.judge(items[: args.workers])  # open the connections
        t0 = time.perf_counter()
        verdicts = judge.judge(items)
        direct = time.perf_counter() - t0
        t0 = time.perf_counter()
        for start in range(0, len(items), 32):  # as score_images calls it
            verdicts += judge.judge(items[start : start + 32])
        batched = time.perf_counter() - t0
        judge.close()
        assert all(v.verdict == "yes" for v in verdicts), {v.verdict for v in verdicts}
        print(f"server latency {args.latency * 1000:.0f} ms, {args.items} items, "
              f"{args.workers} workers, 2 calls per item: ideal {ideal:.0f} items/s")
        print(f"judge, one call:  {direct:6.2f} s  {args.items / direct:6.1f} items/s  "
              f"throughput/ideal {args.items / direct / ideal:.2f}")
        print(f"judge, batches of 32: {batched:6.2f} s  {args.items / batched:6.1f} items/s  "
              f"throughput/ideal {args.items / batched / ideal:.2f}")

        before = calls_so_far()
        t0 = time.perf_counter()
        score_images(run, task_name="bench-count", task_args={"n": args.items},
                     judge_name="vlm-openai", judge_args=judge_args, progress=False,
                     out=run / "first")
        first = time.perf_counter() - t0
        first_calls = calls_so_far() - before
        print(f"score, first:     {first:6.2f} s  {args.items / first:6.1f} items/s  "
              f"throughput/ideal {args.items / first / ideal:.2f}  ({first_calls} calls)")

        before = calls_so_far()
        t0 = time.perf_counter()
        score_images(run, task_name="bench-count", task_args={"n": args.items},
                     judge_name="vlm-openai", judge_args=judge_args, progress=False,
                     out=run / "first")  # the same folder: its verdict cache answers
        again = time.perf_counter() - t0
        again_calls = calls_so_far() - before
        print(f"score, re-score:  {again:6.2f} s  ({again_calls} calls; "
              f"{again / first:.3f} of the first, {first / again:.0f}x faster)")
    stop.set()
    server.join(timeout=10)


if __name__ == "__main__":
    main()
