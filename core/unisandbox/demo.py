"""The main job: the paper's study, end to end, in the sandbox world, on a CPU.

Stages (each resumable: a finished stage is skipped when the demo runs again on its folder):

1. pretrain   the tiny query model: the default checkpoint shipped with unisandbox-query, or
              from scratch with ``sandbox-pretrain`` (``pretrain=True``, a seed other than 0,
              or the quick size's reduced recipe)
2. base       U, G-normal, G-think on math 1-3, mapping 1-3 and knowledge (before injection)
3. inject     the test characters into the understanding side (``inject``)
4. knowledge  U, G-normal, G-think on knowledge forward / inverse after injection
5. stars      STARS self-training with a curriculum over math levels, filtered by the model's
              own text answer against its own description of each candidate (the ``self``
              judge's ``mode=consistency``), then G on held-out items
6. ablation   the same without the filter (``no_filter``), then G again
7. probes     the query logit lens on math and knowledge (before / after injection)
8. report     findings.json (``unisandbox demo`` prints its table on stdout), report.html
              and report.md

Everything goes through the registry, so the stages use exactly what users call:
``unisandbox train``, ``eval``, ``probe``, ``report``.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .errors import UserError
from .registry import Registry, get_registry
from .run.config import Component, RunConfig
from .run.store import atomic_write_json, differences, read_object

REQUIRED = {"model": ("query", "query-tiny"), "trainer": ("sandbox-pretrain", "inject", "stars"),
            "task": ("probe-lens", "probe-transfer")}
MATH = ("math-1", "math-2", "math-3")
MAPPING = ("mapping-1", "mapping-2", "mapping-3")
KNOWLEDGE = ("knowledge-forward", "knowledge-inverse")


@attrs.frozen
class DemoSize:
    """How big each stage is; ``QUICK`` checks the pipeline, ``FULL`` measures the findings."""

    pretrain: Mapping[str, Any]
    n_items: int  # test items per math task; mapping gets half as many pairs
    n_characters: int
    inject: Mapping[str, Any]
    stars: Mapping[str, Any]
    probe_items: int
    #: rough seconds per stage on 2 idle CPU cores, for the time-left estimate (scaled by the
    #: pace the stages done so far went at)
    seconds: Mapping[str, float]


FULL = DemoSize(
    pretrain={},
    n_items=50, n_characters=10,
    inject={"epochs": 12, "lr": 2e-3, "batch_size": 32},
    # the self judge's consistency mode: the sandbox model's YES/NO verdicts cannot tell a
    # right picture from a near miss, its own answer against its own description can
    # (docs/trainers.md)
    stars={"tasks": ",".join(MATH), "n": 128, "k": 4, "order": "curriculum",
           "judge_args": {"mode": "consistency"}},
    probe_items=20,
    # stop 34's full demo on 2 idle cores (373 s with the shipped checkpoint); pretrain is
    # the --pretrain figure (docs/sandbox-model.md)
    seconds={"pretrain": 2650, "base": 31, "inject": 34, "knowledge": 6, "stars": 143,
             "ablation": 126, "probes": 18, "report": 4},
)
QUICK = DemoSize(
    pretrain={"text_steps": 40, "joint_steps": 30, "n_train": 30, "n_characters": 4},
    n_items=4, n_characters=4,
    inject={"steps": 8, "batch_size": 8},
    stars={"tasks": "math-1,math-2", "n": 3, "k": 2, "steps": 4, "order": "curriculum",
           "batch_size": 4, "judge_args": {"mode": "consistency"}},
    probe_items=3,
    # stop 35's quick demo on 2 idle cores (78 s)
    seconds={"pretrain": 51, "base": 6, "inject": 1, "knowledge": 3, "stars": 3,
             "ablation": 4, "probes": 10, "report": 2},
)
STAGES = ("pretrain", "base", "inject", "knowledge", "stars", "ablation", "probes", "report")


def time_left(remaining: float, expected_done: float, taken: float) -> float:
    """The seconds the remaining stages' estimates add up to (``remaining``), at this machine's
    pace so far: the stages done this time took ``taken`` seconds for ``expected_done``
    estimated. Fixed figures for 2 idle cores read "1:19 left" on a loaded machine that needs
    7 minutes; before any stage is timed, the figures are all there is."""
    if expected_done < 1 or taken <= 0:
        return remaining
    # bounded: a stage resumed nearly done (seconds for minutes) or one slow start says
    # little of the stages to come
    return remaining * min(10.0, max(0.5, taken / expected_done))


def _command(options: Any, out: Path) -> str:
    """The command that resumes a demo folder made with ``options`` (demo.json's)."""
    options = options if isinstance(options, dict) else {}
    flags = [*(["--quick"] if options.get("quick") else []),
             *([f"--seed {options['seed']}"] if options.get("seed") else []),
             *(["--pretrain"] if options.get("default_checkpoint") is False
               and not options.get("quick") and not options.get("seed") else [])]
    return " ".join(["unisandbox demo", *flags, "--out", shlex.quote(str(out))])


def _fmt(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Demo:
    """Runs the stages into ``out``; ``log`` receives one line per event."""

    def __init__(self, out: Path, quick: bool = False, seed: int = 0,
                 log: Callable[[str], None] | None = None, progress: bool = True,
                 registry: Registry | None = None, pretrain: bool = False) -> None:
        self.out = Path(out)
        self.size = QUICK if quick else FULL
        self.quick = quick
        # seed 0 at full size is the default query-tiny checkpoint (shipped or cached) unless
        # the user asks to pretrain it here
        self.use_default = not quick and seed == 0 and not pretrain
        self.seed = seed
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self.progress = progress
        self.registry = registry or get_registry()
        self.timings: dict[str, float] = {}
        self._check_plugins()

    def _check_plugins(self) -> None:
        missing = [f"{kind} {name}" for kind, names in REQUIRED.items() for name in names
                   if name not in self.registry.records[kind]]
        if missing:
            raise UserError("the demo needs the first-party plugins (unisandbox-query, "
                            "unisandbox-stars, unisandbox-probes; `make demo` installs them); "
                            f"missing: {', '.join(missing)}")

    def _estimate(self, stage: str) -> float:
        if stage == "pretrain" and self.use_default:
            return 5.0  # a copy of the shipped or cached checkpoint
        return self.size.seconds[stage]

    # --- paths ---------------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    @property
    def base_model(self) -> Path:
        return self.path("pretrain", "model")

    @property
    def injected_model(self) -> Path:
        return self.path("inject", "model")

    # --- driver --------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """What decides the demo's stages: a folder resumes only under the same options."""
        return {"quick": self.quick, "seed": self.seed, "default_checkpoint": self.use_default}

    def _check_folder(self) -> None:
        """The finished stages of a folder are reused only by the demo that made them (a full
        demo resumed on a quick one's folder would report the quick one's 70-step model)."""
        path = self.path("demo.json")
        done = self.path(".done").is_dir() and any(self.path(".done").iterdir())
        if path.is_file():
            recorded = read_object(path, ("options",))["options"]
            if recorded != self.options() and not done:  # stopped before any stage finished
                self.log(f"{self.out} finished no stage under its earlier options; starting afresh")
                shutil.rmtree(self.path("pretrain"), ignore_errors=True)  # the unfinished first stage
                atomic_write_json(path, {"options": self.options()})
            elif recorded != self.options():
                raise UserError(f"{self.out} holds a demo run with other options "
                                f"({differences(recorded, self.options(), 'options')}); resume it "
                                f"with `{_command(recorded, self.out)}`, or choose another --out")
        elif done or self.path("runs").is_dir():
            raise UserError(f"{self.out} holds stages of a demo run that did not record its options "
                            "(demo.json, written since this version); remove it or choose another --out")
        else:
            atomic_write_json(path, {"options": self.options()})

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_folder()
        timings_path = self.path("timings.json")
        if timings_path.is_file():
            self.timings = {k: v for k, v in read_object(timings_path).items()
                            if k in STAGES and isinstance(v, int | float)}
        start = time.perf_counter()
        expected_done = taken = 0.0  # the stages timed this time: their estimates, their time
        for i, stage in enumerate(STAGES, 1):
            marker = self.path(".done", stage)
            if marker.is_file():
                self.log(f"[{i}/{len(STAGES)}] {stage}: done earlier, skipped")
                continue
            left = time_left(sum(self._estimate(s) for s in STAGES[i - 1:]), expected_done, taken)
            self.log(f"[{i}/{len(STAGES)}] {stage} (elapsed {_fmt(time.perf_counter() - start)}, "
                     f"about {_fmt(left)} left)")
            t0 = time.perf_counter()
            getattr(self, f"stage_{stage}")()
            spent = time.perf_counter() - t0
            if not (stage == "pretrain" and self.use_default):
                # a checkpoint copy (or, once, its training into the cache) says nothing of
                # the machine's pace
                expected_done += self._estimate(stage)
                taken += spent
            self.timings[stage] = round(spent, 1)
            atomic_write_json(timings_path, self.timings)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{self.timings[stage]}\n")
        # in stage order; a resumed run's earlier "total" is recomputed, never added in
        self.timings = {s: self.timings[s] for s in STAGES if s in self.timings}
        self.timings["total"] = round(sum(self.timings.values()), 1)
        atomic_write_json(timings_path, self.timings)
        self.log("stage times (s): " + ", ".join(f"{k} {v}" for k, v in self.timings.items()))
        return {"out": str(self.out), "timings": self.timings,
                "report": str(self.path("report", "report.html")), "findings": self.findings()}

    def findings(self) -> dict[str, Any] | None:
        """The verdicts of the report stage, as ``unisandbox findings --json`` prints them;
        None before that stage has run."""
        from .report.findings import findings_json, findings_warnings, load_findings

        path = self.path("findings.json")
        if not path.is_file():
            return None
        return findings_json(load_findings(path), findings_warnings(path))

    # --- stages --------------------------------------------------------------------------
    def _train(self, trainer: str, model_args: Mapping[str, Any], train_args: Mapping[str, Any],
               out: Path) -> Path:
        from .training import run_trainer

        result = run_trainer(trainer, model_name="query", model_args=model_args,
                             train_args={**train_args, "progress": self.progress}, out=out,
                             registry=self.registry)
        return result.checkpoint

    def _eval(self, name: str, model: Path, tasks: list[Component]) -> dict[str, Any]:
        from .run.runner import Runner

        config = RunConfig(model=Component("query", {"path": str(model)}), tasks=tuple(tasks),
                           judge=Component("glyph"), out=self.path("runs", name),
                           seed=self.seed, batch_size=64)
        return Runner(config, registry=self.registry, progress=self.progress,
                      log=self.log).run()

    def _tasks(self, names: tuple[str, ...], **extra: Any) -> list[Component]:
        out = []
        for name in names:
            if name.startswith("knowledge"):
                args = {"world": "glyph", "n_characters": self.size.n_characters}
            elif name.startswith("mapping"):
                args = {"world": "glyph", "n": max(2, self.size.n_items // 2)}
            else:
                args = {"world": "glyph", "n": self.size.n_items}
            out.append(Component(name, {**args, "seed": self.seed, **extra}))
        return out

    def stage_pretrain(self) -> None:
        from .factories import build

        target = self.path("pretrain")
        if (self.base_model / "model.safetensors").is_file():
            return
        spec = self.registry.model("query-tiny")  # present: _check_plugins made sure
        if self.use_default:
            # the default recipe's checkpoint, the one `--model query-tiny` uses: shipped with
            # the plugin (or cached, or trained once into the cache) and copied here
            model = build(spec, {"progress": self.progress})
            self.log(f"using the default query-tiny checkpoint {model.source} "
                     "(`unisandbox demo --pretrain` trains it from scratch here instead)")
            model.save_pretrained(self.base_model)
            return
        trainer = build(self.registry.trainer("sandbox-pretrain"),
                        {**self.size.pretrain, "seed": self.seed, "progress": self.progress})
        trainer.train(build(spec, {"init": "scratch"}), target)

    def stage_base(self) -> None:
        self._eval("base", self.base_model, self._tasks(MATH + MAPPING + KNOWLEDGE))

    def stage_inject(self) -> None:
        from .tasks import knowledge as K
        from .tasks.published import write_conversations
        from .world import get_world

        world = get_world("glyph")
        characters = K.make_characters(self.size.n_characters, self.seed, "test", world)
        corpus = self.path("data", "knowledge-corpus.jsonl")
        corpus.parent.mkdir(parents=True, exist_ok=True)
        write_conversations(K.corpus(characters, world, seed=self.seed), corpus)
        self._train("inject", {"path": str(self.base_model)},
                    {**self.size.inject, "data": str(corpus), "seed": self.seed},
                    self.path("inject"))

    def stage_knowledge(self) -> None:
        self._eval("inject", self.injected_model, self._tasks(KNOWLEDGE))

    def _stars(self, name: str, no_filter: bool) -> None:
        checkpoint = self._train("stars", {"path": str(self.base_model)},
                                 {**self.size.stars, "no_filter": no_filter, "seed": self.seed,
                                  "task_seed": self.seed}, self.path(name))
        tasks = [t for t in self._tasks(MATH) if t.name in self.size.stars["tasks"].split(",")]
        self._eval(name.replace("-", "_"), checkpoint, tasks)

    def stage_stars(self) -> None:
        self._stars("stars", no_filter=False)

    def stage_ablation(self) -> None:
        self._stars("stars-nofilter", no_filter=True)

    def stage_probes(self) -> None:
        from .run.probe import run_probe

        n = self.size.probe_items
        math = Component("probe-lens", {"task": ",".join(MATH), "world": "glyph", "n": n,
                                        "seed": self.seed})
        run_probe(math, self.path("runs", "base", "probes", "lens-math"),
                  model=Component("query", {"path": str(self.base_model)}),
                  progress=self.progress, registry=self.registry, log=self.log)
        stars = self.path("stars", "model")
        if stars.is_dir():
            run_probe(math, self.path("runs", "stars", "probes", "lens-math"),
                      model=Component("query", {"path": str(stars)}),
                      progress=self.progress, registry=self.registry, log=self.log)
        know = Component("probe-lens", {"task": "knowledge-forward", "world": "glyph",
                                        "n_characters": self.size.n_characters, "seed": self.seed})
        for label, model in (("before", self.base_model), ("after", self.injected_model)):
            run_probe(know, self.path("runs", "inject", "probes", f"lens-knowledge-{label}"),
                      model=Component("query", {"path": str(model)}),
                      progress=self.progress, registry=self.registry, log=self.log)
        transfer = Component("probe-transfer", {
            "before": str(self.path("runs", "inject", "probes", "lens-knowledge-before")),
            "after": str(self.path("runs", "inject", "probes", "lens-knowledge-after"))})
        run_probe(transfer, self.path("runs", "inject", "probes", "transfer"),
                  progress=self.progress, registry=self.registry, log=self.log)

    def stage_report(self) -> None:
        from .report import write_report
        from .report.findings import evaluate_findings, save_findings

        runs = {k: self.path("runs", d) for k, d in (("base", "base"), ("inject", "inject"),
                                                     ("stars", "stars"),
                                                     ("stars_nofilter", "stars_nofilter"))}
        inputs: dict[str, Any] = {k: v for k, v in runs.items() if (v / "results.json").is_file()}
        probe = self.path("runs", "stars", "probes", "lens-math", "probe.json")
        if not probe.is_file():
            probe = self.path("runs", "base", "probes", "lens-math", "probe.json")
        if probe.is_file():
            inputs["probes"] = read_object(probe)
        findings = evaluate_findings(inputs)
        # the findings table is the demo's result: the command prints it on stdout
        save_findings(self.path("findings.json"), findings)
        write_report([p for p in runs.values() if (p / "results.json").is_file()],
                     self.path("report"), title="unisandbox demo: the sandbox study",
                     findings=findings)
        self.log(f"report: {self.path('report', 'report.html')}")
