"""Issue 7 figures: knowledge injection and STARS self-training on the sandbox model.

    .venv/bin/python bench/stars.py                      # the default pretrained query-tiny
    .venv/bin/python bench/stars.py --checkpoint DIR     # any sandbox checkpoint folder
    .venv/bin/python bench/stars.py --only stars --variants curriculum,no_filter
    .venv/bin/python bench/stars.py --only stars --variants consistency,no_filter --stars-seeds 0,1,2 --n-test 200
    .venv/bin/python bench/stars.py --only stars --variants distill --query-expert-rank 128 --n-test 200 \
        --stars-args '{"n": 3000, "k": 1, "steps": 3000, "lr": 0.002, "batch_size": 32}' --n-train-eval 200
    .venv/bin/python bench/stars.py --only stars --variants distill,distill_no_filter --shared-candidates ...

Injection: the TEST characters' corpus (``make_characters(..., split="test")`` + ``corpus``)
goes into the understanding side with ``inject``; U on the injected facts (the corpus's own
questions, exact answers; and the knowledge tasks' U) and knowledge-forward / -inverse
G-normal and G-think (engine runner, judge ``glyph``, split test) are measured before and
after. STARS: each variant starts from the same checkpoint, self-trains on TRAIN-split math
prompts and is measured on held-out TEST math items (G-normal per level, before and after);
variants: curriculum (filtered by the model's own understanding: the ``self`` judge's YES /
NO verdict), no_filter (the rejection-sampling ablation), mixed (all levels at once), and on
request consistency (the ``self`` judge's ``mode=consistency``: the model's own text answer
against its own description of the candidate; consistency_mixed, the same in mixed order),
distill and distill_no_filter (mixed order; stage III also matches the raw prompt's condition
to the one that drew each accepted image, ``distill=1``; with and without the consistency
filter; meant with ``--query-expert-rank``), distill_curriculum (distill, levels 1 -> 2 ->
3), distill_keep_think (distill, and ``keep_think=1``: the think context's condition held
where it was), distill_internalize (distill, and ``internalize=0.5``: over the first half of
stage III the raw prompt is followed by its reasoning less its last sentences, one sentence
fewer a stage) and oracle_filter (the exact glyph parser as the filter: what self-training does when the
filter is perfect). An
audit judge (``glyph``) says how right the accepted candidates were (filter precision).
Every figure is printed and written to ``--out/figures.json``; runs resume from ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner

MATH = ("math-1", "math-2", "math-3")
KNOWLEDGE = ("knowledge-forward", "knowledge-inverse")
VARIANTS = {"curriculum": {"order": "curriculum"},
            "no_filter": {"order": "curriculum", "no_filter": True},
            "mixed": {"order": "mixed"},
            # the model's own text answer against its own description of the candidate
            "consistency": {"order": "curriculum", "judge_args": {"mode": "consistency"}},
            "consistency_mixed": {"order": "mixed", "judge_args": {"mode": "consistency"}},
            # stage III also distils the condition that drew each accepted image into the raw
            # prompt (distill > 0; with --query-expert-rank the queries can compute in the LM)
            "distill": {"order": "mixed", "judge_args": {"mode": "consistency"}, "distill": 1.0},
            "distill_no_filter": {"order": "mixed", "no_filter": True, "distill": 1.0},
            "distill_curriculum": {"order": "curriculum", "judge_args": {"mode": "consistency"},
                                   "distill": 1.0},
            # the same, and the prompt with its reasoning keeps the condition it gave (think mode)
            "distill_keep_think": {"order": "mixed", "judge_args": {"mode": "consistency"},
                                   "distill": 1.0, "keep_think": 1.0},
            # distill, the reasoning taken away from its end over the first half of stage III
            "distill_internalize": {"order": "mixed", "judge_args": {"mode": "consistency"},
                                    "distill": 1.0, "internalize": 0.5},
            # the exact glyph parser as the filter: what STARS does with a perfect filter
            "oracle_filter": {"order": "curriculum", "judge": "glyph"}}


def pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


def evaluate(model: Any, checkpoint: Path, tasks: tuple[str, ...], task_args: dict[str, Any],
             modes: tuple[str, ...], out: Path) -> dict[str, dict[str, float | None]]:
    """U and G per task through the engine's runner (judge glyph)."""
    config = RunConfig(model=Component("query", {"path": str(checkpoint)}),
                       tasks=tuple(Component(t, task_args) for t in tasks),
                       judge=Component("glyph"), out=out, modes=modes, batch_size=64)
    results = Runner(config, model=model, progress=True).run()
    table: dict[str, dict[str, float | None]] = {}
    for task, entry in results["tasks"].items():
        cell = entry["levels"]["all"]
        table[task] = {m: cell[m]["accuracy"] for m in (*modes, "understanding") if m in cell}
    return table


def object_and_count(run_dir: Path, mode: str = "normal") -> dict[str, dict[str, float]]:
    """Per task, from the glyph judge's facets: how often the picture shows the right object
    (kind and colour), and how often the count is right when it does — against the count's
    chance (1 in 5). A generator that only learned to read the object out of a reasoning
    prompt sits at chance on the count."""
    tally: dict[str, list[int]] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["mode"] != mode or "facets" not in row:
            continue
        facets = row["facets"]
        t = tally.setdefault(row["task"], [0, 0, 0])
        t[0] += 1
        t[1] += facets["object"]
        t[2] += facets["object"] and facets["count"]
    return {task: {"object": o / n, "count_given_object": (c / o) if o else 0.0}
            for task, (n, o, c) in sorted(tally.items())}


def coverage(phase_dir: Path) -> dict[str, int]:
    """Per phase, by prompt: how many prompts have a right candidate (the audit judge's yes),
    and how many a right candidate the filter kept (a right teacher for stage III). With greedy
    reasoning a prompt's k candidates share one reasoning; sampled reasoning spreads them."""
    by_prompt: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in (phase_dir / "verdicts.jsonl").read_text().splitlines():
        row = json.loads(line)
        by_prompt.setdefault((row["task"], row["id"]), []).append(row)
    rows = by_prompt.values()
    return {"prompts": len(by_prompt),
            "with_a_right_candidate": sum(any(v.get("audit") == "yes" for v in vs) for vs in rows),
            "with_a_kept_right_candidate": sum(any(v["accepted"] and v.get("audit") == "yes" for v in vs)
                                               for vs in rows),
            "kept_wrong_candidates": sum(v["accepted"] and v.get("audit") != "yes" for vs in rows for v in vs)}


def corpus_recall(model: Any, conversations: list[Any]) -> float:
    """Share of the corpus's questions answered with exactly the corpus's answer."""
    from unisandbox.answers import words

    replies = model.chat([c.turns[0].text for c in conversations])
    return sum(words(r) == words(c.turns[-1].text)
               for r, c in zip(replies, conversations, strict=True)) / len(conversations)


def bench_inject(args: argparse.Namespace, checkpoint: Path, figures: dict[str, Any]) -> None:
    from unisandbox.tasks import knowledge as K
    from unisandbox.tasks.published import write_conversations
    from unisandbox.world import get_world
    from unisandbox_query.model import QueryModel
    from unisandbox_stars.inject import InjectTrainer

    out = args.out / "inject"
    world = get_world("glyph")
    characters = K.make_characters(args.n_characters, args.seed, "test", world)
    conversations = K.corpus(characters, world, seed=args.seed)
    data = write_conversations(conversations, out / "corpus.jsonl")
    task_args = {"world": "glyph", "split": "test", "n_characters": args.n_characters,
                 "seed": args.seed}
    print(f"\n== knowledge injection: {len(characters)} test characters, "
          f"{len(conversations)} conversations")
    model = QueryModel.from_pretrained(checkpoint)
    before = evaluate(model, checkpoint, KNOWLEDGE, task_args, ("normal", "think"), out / "eval-before")
    recall_before = corpus_recall(model, conversations)
    t0 = time.perf_counter()
    train_args = json.loads(args.inject_args) if args.inject_args else {}
    result = InjectTrainer(data=str(data), progress=True, **train_args).train(
        model, out / "train")
    seconds = time.perf_counter() - t0
    recall_after = corpus_recall(model, conversations)
    after = evaluate(model, result.checkpoint, KNOWLEDGE, task_args, ("normal", "think"),
                     out / "eval-after")
    figures["inject"] = {"characters": len(characters), "conversations": len(conversations),
                         "train": result.metrics, "train_seconds": round(seconds, 1),
                         "corpus_recall": {"before": recall_before, "after": recall_after},
                         "before": before, "after": after}
    m = result.metrics
    print(f"inject: {m['steps']} steps in {seconds:.0f} s (warm-up {m['warmup_steps']}), "
          f"loss {m['loss_first']} -> {m['loss_last']}")
    print(f"U on the injected facts (corpus questions, exact answer): {pct(recall_before)} % -> "
          f"{pct(recall_after)} %")
    print(f"{'task':18} {'U before':>9} {'U after':>8} {'G-normal':>15} {'G-think':>15}")
    for task in KNOWLEDGE:
        b, a = before[task], after[task]
        print(f"{task:18} {pct(b['understanding']):>9} {pct(a['understanding']):>8} "
              f"{pct(b['normal'])} -> {pct(a['normal'])} {pct(b['think'])} -> {pct(a['think'])}")


def bench_stars(args: argparse.Namespace, checkpoint: Path, figures: dict[str, Any]) -> None:
    from unisandbox_query.model import QueryModel
    from unisandbox_stars.stars import StarsTrainer

    out = args.out / "stars"
    task_args = {"world": "glyph", "split": "test", "n": args.n_test, "seed": args.seed}
    print(f"\n== STARS on math (test: {args.n_test} held-out items per level)")
    base = QueryModel.from_pretrained(checkpoint)
    before = evaluate(base, checkpoint, MATH, task_args, ("normal", "think"), out / "eval-base")
    figures["stars"] = {"base": before, "variants": {}}
    extra = json.loads(args.stars_args) if args.stars_args else {}
    runs = stars_runs(args.variants, args.stars_seeds)
    first: dict[int, str] = {}  # per seed, the run whose candidates the others copy
    for name, (variant, seed) in runs.items():
        model = QueryModel.from_pretrained(checkpoint, query_expert_rank=args.query_expert_rank,
                                           query_layers=args.query_layers,
                                           query_expert_scope=args.query_expert_scope)
        t0 = time.perf_counter()
        seeded = {"seed": seed, "task_seed": seed} if seed else {}
        shared = {}
        if args.shared_candidates:
            if seed in first:
                shared = {"candidates_from": str(out / first[seed])}
            else:
                first[seed] = name
        result = StarsTrainer(audit_judge="glyph", progress=True,
                              **{**VARIANTS[variant], **extra, **seeded, **shared}).train(model, out / name)
        seconds = time.perf_counter() - t0
        after = evaluate(model, result.checkpoint, MATH, task_args, ("normal",), out / f"eval-{name}")
        think = None
        if args.think_after:  # does the trained generator still read the plan of a reasoning?
            think = evaluate(model, result.checkpoint, MATH, task_args, ("think",),
                             out / f"eval-think-after-{name}")
        trained = None
        if args.n_train_eval:  # the first items of the prompts it trained on (the same generator)
            trained = evaluate(model, result.checkpoint, MATH,
                               {**task_args, "split": "train", "n": args.n_train_eval, "seed": seed},
                               ("normal",), out / f"eval-train-{name}")
        summary = json.loads((out / name / "summary.json").read_text())
        acceptance = {phase: {"rate": p["acceptance"]["rate"],
                              "precision": p["acceptance"].get("precision"),
                              "think_accuracy": p["acceptance"].get("audit_accuracy"),
                              "by_level": {lv: c["rate"] for lv, c in p["by_level"].items()},
                              "seconds": p.get("seconds", {}),
                              "coverage": coverage(out / name / phase)}
                      for phase, p in summary["phases"].items()}
        figures["stars"]["variants"][name] = {"after": after, "trained_items": trained,
                                              "think_after": think,
                                              "seconds": round(seconds, 1),
                                              "object_and_count": object_and_count(out / f"eval-{name}"),
                                              "metrics": result.metrics, "acceptance": acceptance}
        print(f"\n{name}: {seconds:.0f} s, {result.metrics['candidates']} candidates, "
              f"{result.metrics['accepted']} accepted, {result.metrics['train_steps']} steps")
        for phase, a in acceptance.items():
            times = ", ".join(f"{k} {v:.0f} s" for k, v in a["seconds"].items() if v is not None)
            print(f"  {phase:16} accepted {pct(a['rate'])} %, filter precision "
                  f"{pct(a['precision'])} %, think-mode candidates right "
                  f"{pct(a['think_accuracy'])} % ({times})")
            c = a["coverage"]
            print(f"  {'':16} prompts with a right candidate {c['with_a_right_candidate']} / "
                  f"{c['prompts']}, with one kept {c['with_a_kept_right_candidate']}; "
                  f"{c['kept_wrong_candidates']} wrong candidates kept")
    print(f"\n{'G-normal (test)':16} {'U':>6} {'think':>6} {'before':>7} "
          + " ".join(f"{n:>17}" for n in runs))
    for task in MATH:
        row = [f"{pct(figures['stars']['variants'][n]['after'][task]['normal'])} "
               f"({100 * (figures['stars']['variants'][n]['after'][task]['normal'] - before[task]['normal']):+5.1f})"
               for n in runs]
        print(f"{task:16} {pct(before[task]['understanding']):>6} {pct(before[task]['think']):>6} "
              f"{pct(before[task]['normal']):>7} " + " ".join(f"{r:>17}" for r in row))
    if args.think_after:
        print("\nG-think after STARS (before: " + " / ".join(pct(before[t]["think"]).strip() for t in MATH)
              + ")")
        for task in MATH:
            cells = [pct(figures["stars"]["variants"][n]["think_after"][task]["think"]) for n in runs]
            print(f"{task:16} " + " ".join(f"{cell:>17}" for cell in cells))
    if args.n_train_eval:
        print(f"\nG-normal on the first {args.n_train_eval} TRAIN prompts per level (what stage III "
              "trained on, where the filter accepted them) against the held-out test items")
        for task in MATH:
            cells = [f"{pct(figures['stars']['variants'][n]['trained_items'][task]['normal'])} /"
                     f"{pct(figures['stars']['variants'][n]['after'][task]['normal'])}" for n in runs]
            print(f"{task:16} " + " ".join(f"{cell:>17}" for cell in cells))
    figures["stars"]["base_object_and_count"] = object_and_count(out / "eval-base")
    print("\nWhat G-normal got right: the object (kind and colour) / the count when the object was "
          "right (chance 20.0)")
    columns = [("before", figures["stars"]["base_object_and_count"])] + [
        (n, figures["stars"]["variants"][n]["object_and_count"]) for n in runs]
    print(f"{'':16} " + " ".join(f"{n:>17}" for n, _ in columns))
    for task in MATH:
        cells = [f"{pct(c.get(task, {}).get('object'))} /{pct(c.get(task, {}).get('count_given_object'))}"
                 for _, c in columns]  # "-" for a run logged before the judge reported facets
        print(f"{task:16} " + " ".join(f"{cell:>17}" for cell in cells))
    if len(args.stars_seeds) > 1:
        figures["stars"]["seeds"] = seed_summary(figures["stars"]["variants"], runs)
    pairs = comparison_pairs(runs, args.variants[0], args.stars_seeds[0])
    if pairs:
        print("\nThe same held-out items, run against run (G-normal): right only in the first / only "
              "in the second, exact McNemar p (it asks whether two trained models differ, not two "
              "methods: read it against the same method's runs on other seeds)")
        figures["stars"]["paired_items"] = {}
        for a, b in pairs:
            table = paired_items(out / f"eval-{a}", out / f"eval-{b}")
            figures["stars"]["paired_items"][f"{a} vs {b}"] = table
            print(f"  {a} vs {b}: " + ", ".join(f"{t} {c['first_only']} / {c['second_only']} "
                                                 f"(p {c['p']:.3f})" for t, c in table.items()))


def comparison_pairs(runs: dict[str, tuple[str, int]], first_variant: str,
                     first_seed: int) -> list[tuple[str, str]]:
    """Runs to compare item by item: the first variant against each other one on the same seed,
    and each variant's first seed against its other seeds — how far two runs of one method
    differ, the yardstick for the first kind."""
    methods = [(a, b) for a, (va, sa) in runs.items() for b, (vb, sb) in runs.items()
               if sa == sb and va == first_variant and vb != va]
    seeds = [(a, b) for a, (va, sa) in runs.items() for b, (vb, sb) in runs.items()
             if va == vb and sa == first_seed and sb != sa]
    return methods + seeds


def paired_items(first: Path, second: Path, mode: str = "normal") -> dict[str, dict[str, Any]]:
    """Per task, on the items both runs drew: how many only the first got right, how many only
    the second, and the exact two-sided McNemar p (a binomial test on the discordant items)."""
    def verdicts(run_dir: Path) -> dict[tuple[str, str], bool]:
        rows = (json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines())
        return {(r["task"], r["id"]): r["verdict"] == "yes" for r in rows if r["mode"] == mode}

    a, b = verdicts(first), verdicts(second)
    out: dict[str, dict[str, Any]] = {}
    for task in sorted({t for t, _ in a}):
        keys = [k for k in a if k[0] == task and k in b]
        only_a = sum(a[k] and not b[k] for k in keys)
        only_b = sum(b[k] and not a[k] for k in keys)
        n = only_a + only_b
        tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n if n else 0.5
        out[task] = {"items": len(keys), "first_only": only_a, "second_only": only_b,
                     "p": min(1.0, 2 * tail)}
    return out


def stars_runs(variants: list[str], seeds: list[int]) -> dict[str, tuple[str, int]]:
    """Run label -> (variant, STARS seed); seed 0 keeps the variant's own name (and folder)."""
    return {(v if s == 0 else f"{v}@{s}"): (v, s) for s in seeds for v in variants}


def paired_t(diffs: list[float]) -> dict[str, Any]:
    """Mean of paired differences and its t on len - 1 degrees of freedom (None when flat)."""
    mean = statistics.mean(diffs)
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    return {"differences": diffs, "mean": mean, "t": mean / (sd / len(diffs) ** 0.5) if sd > 0 else None,
            "df": len(diffs) - 1}


def seed_summary(variants: dict[str, Any], runs: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """G-normal pooled over the math levels per variant and seed, and the paired difference of
    every two variants over the seeds (mean, and t with seeds - 1 degrees of freedom), pooled
    and per level (a filter can help at one level and cost at another)."""
    normal: dict[str, dict[int, dict[str, float]]] = {}
    for label, (variant, seed) in runs.items():
        after = variants[label]["after"]
        normal.setdefault(variant, {})[seed] = {t: after[t]["normal"] for t in MATH}
    pooled = {v: {s: sum(levels.values()) / len(MATH) for s, levels in by_seed.items()}
              for v, by_seed in normal.items()}
    print("\nG-normal pooled over the levels, per STARS seed (and mean)")
    for variant, by_seed in pooled.items():
        print(f"  {variant:18} " + " ".join(f"{s}: {pct(v)}" for s, v in by_seed.items())
              + f"   mean {pct(statistics.mean(by_seed.values()))}")

    def line(name: str, cell: dict[str, Any]) -> str:
        t = f", paired t {cell['t']:.2f} ({cell['df']} df)" if cell["t"] is not None else ""
        return (f"{name}: " + ", ".join(f"{100 * d:+.1f}" for d in cell["differences"])
                + f"; mean {100 * cell['mean']:+.1f} points{t}")

    out: dict[str, Any] = {"pooled": pooled, "paired": {}}
    names = list(pooled)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            cell = paired_t([pooled[a][s] - pooled[b][s] for s in pooled[a]])
            cell["levels"] = {t: paired_t([normal[a][s][t] - normal[b][s][t] for s in normal[a]])
                              for t in MATH}
            out["paired"][f"{a} - {b}"] = cell
            print(f"  {line(f'{a} - {b}', cell)}")
            for t, level in cell["levels"].items():
                print(f"    {line(t, level)}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, help="sandbox model folder (default: the "
                    "pretrained query-tiny, trained into the user cache on first use)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-stars"))
    ap.add_argument("--only", choices=("inject", "stars"), help="run one half only")
    ap.add_argument("--variants", default="curriculum,no_filter,mixed",
                    help="STARS variants: " + ", ".join(VARIANTS))
    ap.add_argument("--n-test", type=int, default=50, help="held-out test items per math level")
    ap.add_argument("--n-train-eval", type=int, default=0, help="also measure G-normal after STARS "
                    "on the first N train prompts per level, the ones it trained on (memorised vs "
                    "generalised; 0: off)")
    ap.add_argument("--think-after", action="store_true", help="also measure G-think after "
                    "STARS (stage III trains on raw prompts only; this says what it did to think mode)")
    ap.add_argument("--n-characters", type=int, default=10, help="test characters to inject")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inject-args", help='JSON object of inject arguments, e.g. {"epochs": 20}')
    ap.add_argument("--stars-args", help='JSON object of stars arguments, e.g. {"n": 48, "k": 4}')
    ap.add_argument("--stars-seeds", default="0", help="STARS seeds (seed and task_seed), e.g. 0,1,2: "
                    "every variant runs once per seed, and every two variants' pooled G-normal are "
                    "compared over the seeds (paired)")
    ap.add_argument("--shared-candidates", action="store_true", help="the variants after the "
                    "first copy its stage-I candidates (stars candidates_from; per seed, first "
                    "phase): a filter ablation on the very same images, and no second stage I")
    ap.add_argument("--threads", type=int, help="torch threads")
    ap.add_argument("--query-expert-rank", type=int, help="give the generation path a query "
                    "expert of this rank before STARS (low-rank LM weights at the query tokens)")
    ap.add_argument("--query-layers", type=int, help="give the generation path this many query "
                    "decoder layers before STARS (its own depth after the LM)")
    ap.add_argument("--query-expert-scope", choices=("queries", "all"), help="where the query "
                    "expert acts: the query positions (default) or every position of the "
                    "generation pass, so the prompt is re-read with weights of its own")
    args = ap.parse_args()
    if args.query_expert_scope and not args.query_expert_rank:
        ap.error("--query-expert-scope needs --query-expert-rank (the expert whose scope it is)")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        args.stars_seeds = sorted({int(x) for x in args.stars_seeds.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--stars-seeds: comma-separated integers, got {args.stars_seeds!r}")
    if not args.stars_seeds or min(args.stars_seeds) < 0:
        ap.error("--stars-seeds: at least one seed, none negative")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.checkpoint is None:
        from unisandbox_query.factories import default_checkpoint

        checkpoint = default_checkpoint()
    else:
        checkpoint = args.checkpoint
    print(f"checkpoint: {checkpoint}")
    figures: dict[str, Any] = {"checkpoint": str(checkpoint)}
    t0 = time.perf_counter()
    if args.only in (None, "inject"):
        bench_inject(args, checkpoint, figures)
    if args.only in (None, "stars"):
        bench_stars(args, checkpoint, figures)
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\ntotal {figures['seconds']:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
