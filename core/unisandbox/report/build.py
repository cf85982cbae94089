"""Everything a report shows, computed once; the HTML and Markdown writers only lay it out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .charts import level_chart
from .compare import CompareRow, compare_results, paired_units
from .findings import Finding
from .load import RunData
from .probes import ProbeSection
from .samples import GridItem, grid_items
from .tables import ResultRow, result_rows

#: how many items per task the image grid shows
ITEMS_PER_TASK = 6


@dataclass
class TaskView:
    name: str
    rows: list[ResultRow]
    chart: bytes | None
    items: list[GridItem]


@dataclass
class RunView:
    run: RunData
    header: list[tuple[str, str]]
    rows: list[ResultRow]
    tasks: list[TaskView]
    grid_note: str | None = None


@dataclass
class Comparison:
    label_a: str
    label_b: str
    rows: list[CompareRow]


@dataclass
class ReportData:
    title: str
    runs: list[RunView]
    probes: list[ProbeSection] = field(default_factory=list)
    findings: list[Finding] | None = None
    comparison: Comparison | None = None
    findings_warnings: list[str] = field(default_factory=list)

    @property
    def contents(self) -> str:
        """What the report covers, for its subtitle: "2 runs", "1 run and 2 probe folders"."""
        def count(n: int, what: str) -> str:
            return f"{n} {what}{'s' if n != 1 else ''}"

        parts = [count(len(self.runs), "run")] if self.runs or not self.probes else []
        if self.probes:
            parts.append(count(len(self.probes), "probe folder"))
        return " and ".join(parts)


def _compact(obj: Any) -> str:
    if obj in (None, {}, []):
        return "-"
    return json.dumps(obj, sort_keys=True, separators=(", ", "=")).replace('"', "")


#: characters a value of the model's identity is cut to in the header (a path keeps its end)
IDENTITY_CHARS = 60


def _shorten(text: str, keep_end: bool = False) -> str:
    if len(text) <= IDENTITY_CHARS:
        return text
    return "…" + text[1 - IDENTITY_CHARS:] if keep_end else text[:IDENTITY_CHARS - 1] + "…"


def model_identity(identity: Any) -> str | None:
    """The weights a run evaluated, compactly: the checkpoint (its path's end), the first 12 hex
    digits of the weights' fingerprint, then the other settings the model recorded. The model's
    name and arguments alone do not say which checkpoint was behind them (a path retrained in
    place, a default that changed). None when config.json has no identity (older runs)."""
    from ..protocols.model import WEIGHTS_FINGERPRINT

    if not isinstance(identity, dict) or not identity:
        return None
    parts = []
    if identity.get("checkpoint") is not None:
        parts.append(f"checkpoint {_shorten(str(identity['checkpoint']), keep_end=True)}")
    fingerprint = identity.get(WEIGHTS_FINGERPRINT)
    if fingerprint is not None:
        scheme, _, digest = str(fingerprint).rpartition(":")
        parts.append(f"weights {scheme + ':' if scheme else ''}{digest[:12]}")
    rest = {k: v for k, v in identity.items() if k not in ("checkpoint", WEIGHTS_FINGERPRINT, "class")}
    if "class" in identity:  # last: the model's name above says most of it
        rest["class"] = identity["class"]
    settings = ", ".join(f"{k}={_shorten(v if isinstance(v, str) else _compact(v))}"
                         for k, v in rest.items())
    return "; ".join([*parts, *([settings] if settings else [])]) or None


def run_header(run: RunData) -> list[tuple[str, str]]:
    """Who and what made this run: model (and the weights behind it), judge, versions, tasks
    with their data hashes."""
    cfg, spec = run.config.get("run", {}), run.config.get("specs", {})
    model, judge = cfg.get("model", {}) or {}, cfg.get("judge", {}) or {}

    def name_of(kind: str, comp: dict[str, Any]) -> str:
        name = comp.get("name", "?")
        origin = spec.get(f"{kind}:{name}")
        return f"{name} ({origin})" if origin else str(name)

    rows = [("folder", str(run.root)),
            ("model", name_of("model", model) + f"; args {_compact(model.get('args'))}"),
            ("judge", name_of("judge", judge) + f"; args {_compact(judge.get('args'))}"
             if run.modes else "none (no image drawn)"),
            ("judge identity", _compact(run.config.get("judge_identity"))),
            ("modes", ", ".join(run.modes) or "-"),
            ("understanding (U)", "measured" if cfg.get("understanding", True) and
             run.results.get("understanding_measured", True) else "not measured"),
            ("scoring", f"{run.results.get('scoring', 'default')} (judge errors "
             + ("count as wrong)" if run.results.get("scoring") == "reference"
                else "left out of n)")),
            ("seed", str(cfg.get("seed", "-"))),
            ("unisandbox", str(run.config.get("unisandbox", "-"))),
            ("plugins", ", ".join(f"{k} {v}" for k, v in sorted(run.config.get("plugins", {}).items())) or "-")]
    for name, ident in (run.config.get("tasks") or {}).items():
        if isinstance(ident, dict):
            sha = str(ident.get("data_sha256", ""))[:12]
            # n here counts samples; the results count units (a mapping pair is one unit)
            rows.append((f"task {name}", f"{ident.get('family', '?')}, {ident.get('n', '?')} samples, "
                         f"unit {ident.get('unit', '?')}, data sha256 {sha or '-'}"))
    identity = model_identity(run.config.get("model_identity"))
    if identity is not None:
        rows.insert(2, ("model identity", identity))
    if run.config.get("kind") == "score":
        rows.insert(1, ("kind", f"scored images from {run.config.get('source', '?')}"))
    return rows


def build_run_view(run: RunData, items_per_task: int = ITEMS_PER_TASK, charts: bool = True) -> RunView:
    rows = result_rows(run.results)
    records = run.records()
    note = None if records else "samples.jsonl is missing or empty: no sample images to show."
    by_task: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = {}
    for key, record in records.items():
        by_task.setdefault(key[0], {})[key] = record
    gen_modes = run.modes
    tasks = []
    for task in run.results["tasks"]:
        mine = [r for r in rows if r.task == task]
        chart = level_chart(task, mine, gen_modes) if charts and mine else None
        items = (grid_items(by_task.get(task, {}), task, gen_modes, items_per_task)
                 if gen_modes else [])
        tasks.append(TaskView(task, mine, chart, items))
    return RunView(run, run_header(run), rows, tasks, note)


def build_report(runs: list[RunData], *, title: str, probes: list[ProbeSection] | None = None,
                 findings: list[Finding] | None = None, compare: bool = False,
                 items_per_task: int = ITEMS_PER_TASK,
                 findings_warnings: Sequence[str] = ()) -> ReportData:
    comparison = None
    if compare:
        a, b = runs[0], runs[1]
        comparison = Comparison(a.label, b.label,
                                compare_results(a.results, b.results, paired_units(a, b)))
    views = [build_run_view(r, items_per_task) for r in runs]
    return ReportData(title, views, list(probes or []), findings, comparison, list(findings_warnings))
