"""``probe-lens``: the logit lens at the query tokens, the baseline and the context position.

For every sample of the base task(s), every mode, every position the model reports
(``QueryStates.labels``: ``baseline`` and ``q0..qN`` for query-based models, ``context`` for
MoT models such as BAGEL) and every layer, the model's final norm + LM head turn the hidden
state into a distribution over the vocabulary; the probe records the total probability of the
sample's relevant words (see ``words.py``) and the top-k tokens. The paper's Figure 4 question
is then: do the query tokens put more probability on the answer than the last text token
before them (the baseline) does?
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unisandbox.errors import UserError
from unisandbox.factories import accepted_arguments, build, check_number
from unisandbox.paths import safe_name
from unisandbox.protocols import Model, Task
from unisandbox.protocols.analysis import RESULT_FILE, AnalysisTask, Progress, no_progress
from unisandbox.records import GenerationRequest, Sample
from unisandbox.registry import get_registry
from unisandbox.run.seeds import sample_seed
from unisandbox.run.store import atomic_write_bytes

from . import figures
from .section import Block, Figure, Heading, Paragraph, Table, write_section
from .words import GROUPS, group_ids, primary_group, token_groups

RELEVANT = "relevant"
#: The other items' answers at this item's positions (a permutation null within items of one
#: kind: is it *this* answer, or the kind of answer the task has?).
CONTROL = "control"


def _round(value: float) -> float:
    """Six significant digits: every number stays, probe.json stays readable."""
    return float(f"{value:.6g}")


def _rounded(rows: Any) -> Any:
    if isinstance(rows, list):
        return [_rounded(r) for r in rows]
    return _round(float(rows))


def write_result(out_dir: Path, result: Mapping[str, Any]) -> None:
    """``probe.json``, compact (per-sample, per-layer top-k lists would triple in size indented)."""
    text = json.dumps(result, separators=(",", ":"), sort_keys=True, allow_nan=False)
    atomic_write_bytes(out_dir / RESULT_FILE, (text + "\n").encode())


def level_key(sample: Sample) -> str:
    return "all" if sample.level is None else str(sample.level)


def parse_task_names(task: str | Sequence[str]) -> list[str]:
    names = [t.strip() for t in (task.split(",") if isinstance(task, str) else task)]
    names = [n for n in names if n]
    if not names:
        raise UserError("probe-lens: give the task to probe, e.g. --task-arg task=math-1")
    return list(dict.fromkeys(names))


def build_base_tasks(names: Sequence[str], task_args: Mapping[str, Any]) -> list[Task]:
    """Build each base task with the arguments it accepts; an argument none accepts is an error."""
    registry = get_registry()
    specs = [registry.task(n) for n in names]
    used: set[str] = set()
    tasks: list[Task] = []
    for spec in specs:
        if spec.analysis:
            raise UserError(f"probe-lens: {spec.name!r} is itself a probe; give an evaluation "
                            "task such as math-1 or knowledge-forward")
        accepted = accepted_arguments(spec)
        args = {k: v for k, v in task_args.items() if accepted is None or k in accepted}
        used |= set(args)
        tasks.append(build(spec, args))
    unused = sorted(set(task_args) - used)
    if unused:
        raise UserError(f"probe-lens: no task among {', '.join(names)} takes argument "
                        f"{unused[0]!r}")
    return tasks


class LensProbe(AnalysisTask):
    """Logit lens over queries / baseline / context for the samples of one or more tasks."""

    name = "probe-lens"

    def __init__(self, task: str | Sequence[str], top_k: int = 5, threshold: float = 0.05,
                 batch_size: int = 16, **task_args: Any) -> None:
        check_number("top_k", top_k, whole=True, low=1)  # true is no count
        check_number("batch_size", batch_size, whole=True, low=1)
        check_number("threshold", threshold, whole=False, low=0)
        if threshold > 1:
            raise UserError(f"threshold must be a probability in [0, 1], got {threshold!r}")
        self.task_names = parse_task_names(task)
        self.task_args = dict(task_args)
        self.top_k = top_k
        self.threshold = float(threshold)
        self.batch_size = batch_size
        self.tasks = build_base_tasks(self.task_names, self.task_args)

    def samples(self) -> list[Sample]:
        return [s for t in self.tasks for s in t.samples()]

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "tasks": {t.name: t.identity() for t in self.tasks},
                "task_args": self.task_args, "top_k": self.top_k, "threshold": self.threshold}

    # --- measuring --------------------------------------------------------------------------
    def analyze(self, model: Model | None, modes: Sequence[str], out_dir: Path,
                progress: Progress = no_progress) -> dict[str, Any]:
        if model is None:
            raise UserError("probe-lens reads a model's hidden states: give --model")
        records = [r for task in self.tasks for mode in modes
                   for r in self._measure(model, task, mode, progress)]
        result = {
            "probe": self.name, "model": model.identity(), "tasks": self.task_names,
            "task_args": self.task_args, "modes": list(modes), "top_k": self.top_k,
            "threshold": self.threshold, "cells": aggregate(records, self.top_k, self.threshold),
            "rows": item_rows(records), "samples": records,
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        write_result(out_dir, result)
        write_section(self.section(result, out_dir), out_dir)
        return summary(result)

    def _measure(self, model: Model, task: Task, mode: str,
                 progress: Progress) -> list[dict[str, Any]]:
        import torch

        vocab = model.vocabulary()
        tokens = {i: t for t, i in vocab.items()}
        samples = list(task.samples())
        words = {s.id: token_groups(s, vocab) for s in samples}
        # the control shuffles answers among items of one kind (knowledge: portrait / fruit /
        # flower), so it never compares a fruit prompt with portrait words
        answers: dict[str, Counter[tuple[int, ...]]] = defaultdict(Counter)
        for s in samples:
            answers[sample_kind(s)][answer_ids(words[s.id])] += 1
        out: list[dict[str, Any]] = []
        for start in range(0, len(samples), self.batch_size):
            batch = samples[start : start + self.batch_size]
            requests = [GenerationRequest(s.prompt, mode, sample_seed(0, task.name, s.id, mode))
                        for s in batch]
            states = model.query_states(requests)
            if len(states) != len(batch):
                raise RuntimeError(f"{type(model).__name__}.query_states returned {len(states)} "
                                   f"results for {len(batch)} requests")
            for sample, st in zip(batch, states, strict=True):
                hidden = st.hidden
                if hidden.dim() != 3 or hidden.shape[1] != len(st.labels):
                    raise RuntimeError(f"{type(model).__name__}.query_states: hidden must be "
                                       f"[layers + 1, {len(st.labels)} positions, width], got "
                                       f"{tuple(hidden.shape)}")
                with torch.no_grad():
                    probs = model.logit_lens(hidden).float().cpu()
                if probs.shape[:2] != hidden.shape[:2]:
                    raise RuntimeError(f"{type(model).__name__}.logit_lens: expected "
                                       f"{tuple(hidden.shape[:2])} + [vocabulary], got {tuple(probs.shape)}")
                out.append(self._record(task, sample, mode, st.labels, st.think, probs,
                                        words[sample.id], answers[sample_kind(sample)], tokens))
            progress(f"{task.name} {mode}", min(start + len(batch), len(samples)), len(samples))
        return out

    def _record(self, task: Task, sample: Sample, mode: str, labels: Sequence[str],
                think: str | None, probs: Any, words: Mapping[str, Any],
                answers: Counter[tuple[int, ...]], tokens: Mapping[int, str]) -> dict[str, Any]:
        size = probs.shape[-1]
        prob, chance = {}, {}
        for group, members in words.items():
            ids = [i for i in group_ids(members) if i < size]
            prob[group] = _rounded(probs[..., ids].sum(-1).tolist()) if ids else \
                [[0.0] * probs.shape[1] for _ in range(probs.shape[0])]
            chance[group] = _round(len(ids) / size)
        primary = primary_group(words)
        prob[RELEVANT], chance[RELEVANT] = prob[primary], chance[primary]
        # every other item with a different answer counts once, with its whole answer (as if
        # the answers were shuffled among the items: the null P(relevant) is compared with)
        own = answer_ids(words)
        others = [([i for i in ids if i < size], n) for ids, n in answers.items() if ids != own]
        others = [(ids, n) for ids, n in others if ids]
        if others:
            total = sum(n for _, n in others)
            control = sum(n * probs[..., ids].sum(-1) for ids, n in others) / total
            prob[CONTROL] = _rounded(control.tolist())
            chance[CONTROL] = _round(sum(n * len(ids) for ids, n in others) / total / size)
        values, indices = probs.topk(min(self.top_k, size), dim=-1)
        top = [[[[tokens.get(int(i), f"<{int(i)}>"), _round(float(v))]
                 for v, i in zip(vs, ix, strict=True)]
                for vs, ix in zip(lv, li, strict=True)]
               for lv, li in zip(values.tolist(), indices.tolist(), strict=True)]
        return {
            "task": task.name, "id": sample.id, "level": sample.level, "level_key": level_key(sample),
            "mode": mode, "prompt": sample.prompt, "answer": sample.answer, "think": think,
            "labels": list(labels), "vocabulary_size": size, "relevant": primary,
            "words": {g: [w.to_json() for w in ws] for g, ws in words.items()},
            "prob": prob, "chance": chance, "top": top,
        }

    # --- presenting -------------------------------------------------------------------------
    def section(self, result: Mapping[str, Any], out_dir: Path) -> list[Block]:
        return lens_section(result, out_dir)



def sample_kind(sample: Sample) -> str:
    """The kind of item (``meta['kind']`` when the task sets one, else one kind for all)."""
    return str(sample.meta.get("kind", ""))


def answer_ids(words: Mapping[str, Any]) -> tuple[int, ...]:
    """The token ids of a sample's relevant group, as a hashable key."""
    return tuple(sorted(group_ids(words[primary_group(words)])))


# --- aggregation ------------------------------------------------------------------------------
def _mean(matrices: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    n = len(matrices)
    return [[_round(sum(m[r][c] for m in matrices) / n) for c in range(len(matrices[0][r]))]
            for r in range(len(matrices[0]))]


def per_layer(mean: Sequence[Sequence[float]], labels: Sequence[str]) -> dict[str, list[Any]]:
    """The series the figures and tables read: baseline, queries (mean, best, which), context."""
    out: dict[str, list[Any]] = {}
    queries = [i for i, lab in enumerate(labels) if lab.startswith("q")]
    if "baseline" in labels:
        out["baseline"] = [row[labels.index("baseline")] for row in mean]
    if queries:
        out["queries_mean"] = [_round(sum(row[i] for i in queries) / len(queries)) for row in mean]
        out["queries_max"] = [max(row[i] for i in queries) for row in mean]
        out["queries_argmax"] = [labels[max(queries, key=lambda i, r=row: r[i])] for row in mean]
    if "context" in labels:
        out["context"] = [row[labels.index("context")] for row in mean]
    return out


def _mean_top(records: Sequence[Mapping[str, Any]], k: int) -> list[list[list[Any]]]:
    """Per layer and position, the tokens of highest mean probability over the samples.

    Each sample contributes its top-k tokens only (a token outside a sample's top-k counts 0
    there), so a probe never has to hold a [layers, positions, vocabulary] sum per cell.
    """
    n = len(records)
    layers, positions = len(records[0]["top"]), len(records[0]["top"][0])
    out = []
    for layer in range(layers):
        row = []
        for pos in range(positions):
            mass: dict[str, float] = defaultdict(float)
            for r in records:
                for token, p in r["top"][layer][pos]:
                    mass[token] += p / n
            best = sorted(mass.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
            row.append([[t, _round(p)] for t, p in best])
        out.append(row)
    return out


def aggregate(records: Sequence[Mapping[str, Any]], top_k: int, threshold: float) -> list[dict[str, Any]]:
    """One cell per (task, level, mode): means over samples, per-layer series, shown positions.

    Levels: each level of the task, plus ``all`` when a task has more than one (a task without
    levels is ``all``).
    """
    cells: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    levels: dict[str, set[str]] = defaultdict(set)
    for r in records:
        cells[r["task"], r["level_key"], r["mode"]].append(r)
        levels[r["task"]].add(r["level_key"])
    for r in records:
        if len(levels[r["task"]]) > 1:
            cells[r["task"], "all", r["mode"]].append(r)
    out = []
    for (task, level, mode), members in cells.items():
        labels = members[0]["labels"]
        if any(m["labels"] != labels for m in members):
            raise RuntimeError(f"{task} {mode}: the model reported different positions for "
                               "different samples; the probe cannot average them")
        mean, chance, n = {}, {}, {}
        for group in (*GROUPS, RELEVANT, CONTROL):
            having = [m for m in members if group in m["prob"]]
            if having:
                mean[group] = _mean([m["prob"][group] for m in having])
                chance[group] = _round(sum(m["chance"][group] for m in having) / len(having))
                n[group] = len(having)
        series = per_layer(mean[RELEVANT], labels)
        control = per_layer(mean[CONTROL], labels) if CONTROL in mean else {}
        top = _mean_top(members, top_k)
        out.append({
            "task": task, "level": level, "mode": mode, "n": len(members), "labels": labels,
            "relevant_group": sorted({m["relevant"] for m in members}), "mean": mean,
            "chance": chance, "n_group": n, "per_layer": series, "per_layer_control": control,
            "top": top, "best": best_layer(series, control, chance[RELEVANT]),
            "shown": shown_positions(mean[RELEVANT], mean.get(CONTROL), labels, top, threshold),
        })
    order = {t: i for i, t in enumerate(dict.fromkeys(r["task"] for r in records))}
    return sorted(out, key=lambda c: (order[c["task"]], c["level"] == "all", c["level"], c["mode"]))


def best_layer(series: Mapping[str, Sequence[Any]], control: Mapping[str, Sequence[Any]],
               chance: float) -> dict[str, Any]:
    """The layer where the probed positions (queries, else context) hold the most answer mass,
    with every series there and the other answers' probability at the same positions."""
    key = "queries_mean" if "queries_mean" in series else "context" if "context" in series else "baseline"
    values = series[key]
    layer = max(range(len(values)), key=lambda i: values[i])
    best = {"layer": layer, "series": key, "chance": chance}
    for name, vals in series.items():
        best[name] = vals[layer]
    best["control"] = control[key][layer] if key in control else None
    return best


def shown_positions(mean: Sequence[Sequence[float]], control: Sequence[Sequence[float]] | None,
                    labels: Sequence[str], top: Sequence[Sequence[Any]],
                    threshold: float) -> list[dict[str, Any]]:
    """Positions other than the baseline whose mean relevant probability exceeds the threshold
    at some layer: the rows of the section's tables (every number is in the JSON anyway)."""
    rows = []
    base = labels.index("baseline") if "baseline" in labels else None
    for pos, label in enumerate(labels):
        if pos == base:
            continue
        layer = max(range(len(mean)), key=lambda i: mean[i][pos])
        if mean[layer][pos] > threshold:
            rows.append({"label": label, "layer": layer, "prob": mean[layer][pos],
                         "baseline": None if base is None else mean[layer][base],
                         "control": None if control is None else control[layer][pos],
                         "top": top[layer][pos]})
    return rows


def item_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, mode), paired per item: the relevant probability averaged over the query
    tokens, and at the baseline, each at its own best layer (the layer where its mean over the
    items is highest: the same selection for both, so neither side is favoured). What the
    report's findings table tests ("query tokens carry the answer"). Models without queries
    (a ``context`` position only) have no rows."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        if "baseline" in r["labels"] and any(lab.startswith("q") for lab in r["labels"]):
            groups[r["task"], r["mode"]].append(r)
    rows = []
    for (task, mode), members in groups.items():
        series = [per_layer(m["prob"][RELEVANT], m["labels"]) for m in members]
        query = [s["queries_mean"] for s in series]
        base = [s["baseline"] for s in series]
        layers = range(len(query[0]))
        lq = max(layers, key=lambda i: sum(q[i] for q in query))
        lb = max(layers, key=lambda i: sum(b[i] for b in base))
        row = {"task": task, "mode": mode, "ids": [m["id"] for m in members],
               "layer_query": lq, "layer_baseline": lb,
               "query": [q[lq] for q in query], "baseline": [b[lb] for b in base]}
        if all(CONTROL in m["prob"] for m in members):  # other answers, same queries and layer
            row["control"] = [per_layer(m["prob"][CONTROL], m["labels"])["queries_mean"][lq]
                              for m in members]
        rows.append(row)
    return rows


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the CLI prints: one row per cell at the best layer."""
    rows = []
    for c in result["cells"]:
        b = c["best"]
        rows.append([c["task"], c["level"], c["mode"], c["n"], b["layer"],
                     _fmt(b.get("queries_mean", b.get("context"))), _fmt(b["control"]),
                     _fmt(b.get("queries_max")), _fmt(b.get("baseline")), _fmt(b["chance"]),
                     len(c["shown"])])
    headers = ["task", "level", "mode", "n", "best layer", "queries mean / context",
               "other answers", "best query", "baseline", "uniform",
               f"shown (>{result['threshold']:g})"]
    return {"probe": result["probe"], "cells": [{k: c[k] for k in ("task", "level", "mode", "n", "best")}
                                                 for c in result["cells"]],
            "table": {"headers": headers, "rows": rows}}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# --- the report section -----------------------------------------------------------------------
def lens_section(result: Mapping[str, Any], out_dir: Path) -> list[Block]:
    # the checkpoint folder's name, not its absolute path (a report is mailed; probe.json keeps it)
    checkpoint = result["model"].get("checkpoint")
    parts = Path(checkpoint).parts[-2:] if checkpoint else ()
    # a trainer's checkpoint is RUN/model: its run's name tells a base from a STARS lens
    model = ("/".join(parts) if parts and parts[-1] == "model" else parts[-1]) if parts else \
        result["model"].get("class", "model")
    blocks: list[Block] = [
        Heading(f"Logit lens: {', '.join(result['tasks'])} ({model})"),
        Paragraph("Each position's hidden state at each layer, read through the model's final "
                  "norm and LM head: the probability of the sample's relevant words (the count "
                  "for math, else the answer's object or attribute, in every surface form the "
                  "vocabulary holds). The baseline is the last text token before the query "
                  "tokens; 'other answers' is the probability, at the same position and "
                  "layer, of the answers of the task's other items of the same kind (as if the "
                  "answers were shuffled): does the position hold this answer, or just the kind of answer "
                  "the task has? 'uniform' is what a flat distribution would give. Only positions "
                  f"above {result['threshold']:g} are listed per cell; probe.json holds every "
                  "number, per sample, position and layer."),
    ]
    table = summary(result)["table"]
    blocks.append(Table(tuple(table["headers"]), tuple(tuple(r) for r in table["rows"])))
    by_task_level: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for c in result["cells"]:
        by_task_level[c["task"], c["level"]][c["mode"]] = c
    for (task, level), cells in by_task_level.items():
        name = safe_name(f"{task}_{level}")
        where = task if level == "all" else f"{task} level {level}"
        blocks.append(Heading(where, 2))
        for mode, c in cells.items():
            if c["shown"]:
                rows = tuple((s["label"], s["layer"], s["prob"], s["control"], s["baseline"],
                              ", ".join(f"{t} {p:.2f}" for t, p in s["top"]))
                             for s in c["shown"])
                blocks.append(Paragraph(f"{mode}: positions above the threshold"))
                blocks.append(Table(("position", "layer", "P(relevant)", "other answers",
                                     "baseline", "top tokens"), rows))
            else:
                b = c["best"]
                peak = max(b.get("queries_max") or 0.0, b.get("context") or 0.0)
                blocks.append(Paragraph(f"{mode}: no position exceeds {result['threshold']:g} "
                                        f"(highest {peak:.4f} at layer {b['layer']})."))
        heat = figures.heatmap(cells, f"{where}: P(relevant) by layer and position",
                               out_dir / f"heatmap_{name}.png")
        bars = figures.layer_bars(cells, f"{where}: baseline vs queries/context",
                                  out_dir / f"bars_{name}.png")
        blocks.append(Figure(heat, f"{where}: mean probability of the relevant words at each "
                                   "layer (rows) and position (columns), per mode."))
        blocks.append(Figure(bars, f"{where}: per layer, the relevant-word probability at the "
                                   "baseline and at the query tokens (or the context position)."))
    return blocks
