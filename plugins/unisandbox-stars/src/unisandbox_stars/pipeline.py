"""The STARS stages, their artifacts and their resumption (see stars.py for the method).

Folder::

    trainer.json                      arguments, base model identity (checked on resume)
    judge_cache.jsonl                 verdicts by (judge, image, prompt): reruns make no calls
    audit_cache.jsonl                 the same for ``audit_judge``
    round1-level1/                    a phase (``round1-mixed`` with order=mixed)
        candidates.jsonl              stage I: task, id, k, level, prompt, seed, think, image
        images/<task>/<id>-k<k>.png
        stage1.done                   (with candidates_from: says where the candidates came from)
        verdicts.jsonl                stage II: verdict, raw judge text, accepted, audit
        accepted.jsonl                the candidates kept
        acceptance.json               rates per task and level (and filter precision vs audit)
        stage2.done
        teachers.safetensors          stage III with distill or keep_think > 0: the condition that drew each
                                      training image (computed before training, kept for resuming)
        train/                        stage III: finetune.py's folder (metrics, state, model/)
        stage3.done
    summary.json, model/, done.json   after the last phase

Every log is append-only and every other file is written atomically, so a run killed
anywhere continues where it stopped when started again on the same folder: finished stages
are skipped (a finished stage III loads its parameters back), a half-done stage I or II
skips the candidates its log holds, a half-done stage III resumes from its last state.
Under torchrun, stage I is dealt out to ranks by chunks of candidates, rank 0 judges, and
stage III trains data-parallel.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from unisandbox import capabilities as caps
from unisandbox.distributed import get_dist
from unisandbox.errors import UserError
from unisandbox.factories import accepted_arguments, build, judge_task_context
from unisandbox.judges.cache import CachedJudge
from unisandbox.paths import inside
from unisandbox.progress import bar as progress_bar
from unisandbox.protocols import (
    GENERATION_PARTS,
    Judge,
    Model,
    Task,
    TrainResult,
    resume_identities,
)
from unisandbox.records import GenerationRequest, JudgeItem, Sample, Verdict
from unisandbox.registry import get_registry
from unisandbox.run.seeds import sample_seed
from unisandbox.run.store import (
    JsonlLog,
    atomic_write_bytes,
    atomic_write_json,
    differences,
    jsonl_bytes,
    read_object,
    save_png,
)

from .common import as_json, check_run_folder, stderr_log

if TYPE_CHECKING:
    from .stars import StarsTrainer

Key = tuple[str, str, int]
#: the arguments that decide stage I's candidates (with the model and the seed)
STAGE1_ARGUMENTS = ("tasks", "n", "k", "world", "task_seed", "order", "gen_batch",
                    "think_temperature")


@attrs.frozen
class Phase:
    round: int
    levels: tuple[int, ...]
    name: str
    steps: int | None


def level_of(sample: Sample) -> int:
    """Curriculum level of a sample; tasks without levels (knowledge) count as level 1."""
    return sample.level if sample.level is not None else 1


def key_of(record: dict[str, Any]) -> Key:
    return (record["task"], record["id"], int(record["k"]))


def split_steps(total: int | None, parts: int) -> list[int | None]:
    """``total`` steps shared out over ``parts`` phases (earlier phases get the remainder)."""
    if total is None:
        return [None] * parts
    base, extra = divmod(total, parts)
    return [max(1, base + (1 if i < extra else 0)) for i in range(parts)]


class Internalization:
    """Stage III's reasoning, taken away from its end one sentence at a time (``internalize``).

    Over the first ``span`` steps, in as many equal stages as the longest reasoning has
    sentences, stage s conditions each prompt on its own reasoning without its last s
    sentences: the plan goes first, then the last worked step, and so on. Each stage leaves the
    trained path one more step to compute itself from results still written in the context
    (stepwise internalization of a chain of thought). After ``span`` steps, and for a reasoning
    with no sentence left, the raw prompt alone: what STARS trains the generator for.
    """

    def __init__(self, thinks: Sequence[str | None], span: float) -> None:
        self.stages = max((len(sentences(t)) for t in thinks if t), default=1)
        self.span = span

    def removed(self, step: int) -> int:
        """How many sentences, counted from the end, are gone at ``step``."""
        if step >= self.span:
            return self.stages
        return 1 + int(step * self.stages / self.span)

    def __call__(self, think: str | None, step: int) -> str | None:
        parts = sentences(think) if think else []
        keep = len(parts) - self.removed(step)
        return " ".join(parts[:keep]) if keep > 0 else None


def sentences(text: str) -> list[str]:
    """A reasoning's sentences: split after ".", "!" or "?" followed by a space, so "3.5" stays."""
    return [part for part in re.split(r"(?<=[.!?])\s+", text.strip()) if part]


class StarsRun:
    """One STARS run of ``trainer``'s settings on ``model`` into ``out``."""

    def __init__(self, trainer: StarsTrainer, model: Model, out: Path) -> None:
        self.t = trainer
        self.model = model
        self.out = out
        self.dist = get_dist()
        self.log = stderr_log(self.dist.is_main)
        self.registry = get_registry()
        self._judge: Judge | None = None
        self._audit: Judge | None = None
        self.tasks = self._build_tasks()
        self._check_judges()
        for name, capability, what in (
                ("distill", caps.CONDITION, "the generator's condition for a context"),
                ("keep_think", caps.CONDITION, "the generator's condition for a context"),
                ("internalize", caps.CONDITION, "the generator's condition for a context"),
                ("think_temperature", caps.THINK_SAMPLING, "a sampled, seeded reasoning")):
            if getattr(trainer, name) and capability not in model.capabilities:
                raise UserError(f"{name} needs a model with the {capability!r} capability ({what}); "
                                f"{type(model).__name__} does not declare it")

    # --- set-up -------------------------------------------------------------------------
    def _build_tasks(self) -> list[Task]:
        tasks = []
        for name in self.t.tasks:
            spec = self.registry.task(name)
            if spec.analysis:
                raise UserError(f"task {name!r} is an analysis task (a probe); STARS needs "
                                "generation tasks")
            wanted = {"n": self.t.n, "split": "train", "seed": self.t.task_seed,
                      "world": self.t.world}
            accepted = accepted_arguments(spec)
            if accepted is not None:
                if "split" not in accepted:
                    raise UserError(f"task {name!r} has no split argument; STARS trains only on "
                                    "train-split prompts, never on test items")
                wanted = {k: v for k, v in wanted.items() if k in accepted}
            tasks.append(build(spec, wanted))
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise UserError(f"the same task appears twice: {names}")
        for task in tasks:
            splits = {s.meta.get("split") for s in task.samples()} - {None}
            if splits - {"train"}:
                raise UserError(f"task {task.name!r} gave samples of split(s) {sorted(splits)}; "
                                "STARS trains only on the train split")
        return tasks

    def _check_judges(self) -> None:
        """Build the judges now, so a bad ``judge_args`` stops the run before stage I draws a
        single candidate (judge factories load nothing heavy until they judge)."""
        self._inner: dict[str, Judge] = {}
        wanted = {} if self.t.no_filter else {"judge": (self.t.judge, self.t.judge_args)}
        if self.t.audit_judge:
            wanted["audit"] = (self.t.audit_judge, {})
        for role, (name, args) in wanted.items():
            spec = self.registry.judge(name)
            missing = sorted(spec.requires - self.model.capabilities)
            if missing:
                raise UserError(f"judge {name!r} needs {', '.join(missing)}, which the model "
                                "does not provide")
            context: dict[str, Any] = {"model_loader": lambda: self.model} if spec.requires else {}
            context.update(judge_task_context(spec, self.tasks))
            try:
                self._inner[role] = build(spec, args, **context)
            except UserError as exc:
                if role == "audit":
                    raise
                raise UserError(f"{exc} (in stars, a judge's arguments are one --train-arg: "
                                "'judge_args={\"model\": \"...\"}')") from None

    @property
    def judge(self) -> CachedJudge:
        if self._judge is None:
            self._judge = CachedJudge(self._inner["judge"], self.out / "judge_cache.jsonl")
        return self._judge

    @property
    def audit(self) -> CachedJudge | None:
        if self._audit is None and self.t.audit_judge:
            self._audit = CachedJudge(self._inner["audit"], self.out / "audit_cache.jsonl")
        return self._audit

    def phases(self) -> list[Phase]:
        from .stars import DEFAULT_STEPS

        levels = sorted({level_of(s) for t in self.tasks for s in t.samples()})
        opts = self.t.options
        steps = opts.steps if opts.steps is not None else (DEFAULT_STEPS if opts.epochs is None else None)
        out = []
        for r in range(1, self.t.rounds + 1):
            if self.t.order == "mixed":
                out.append(Phase(r, tuple(levels), f"round{r}-mixed", steps))
            else:
                shares = split_steps(steps, len(levels))
                out += [Phase(r, (lv,), f"round{r}-level{lv}", s)
                        for lv, s in zip(levels, shares, strict=True)]
        return out

    def training_phases(self, phases: Sequence[Phase], phase: Phase) -> list[Phase]:
        """Whose accepted candidates ``phase``'s stage III trains on: its own, and with
        ``replay`` (a curriculum's default) also those of the earlier phases of its round,
        so that learning level 2 does not mean forgetting level 1."""
        if not self.t.replay:
            return [phase]
        upto = phases[: phases.index(phase) + 1]
        return [p for p in upto if p.round == phase.round]

    # --- the run ------------------------------------------------------------------------
    def run(self) -> TrainResult:
        phases = self.phases()
        # checked before trainer.json is written, by every process: a wrong source must not
        # claim the folder, nor stop one rank while the others wait for it
        source = (self._candidates_source(phases[0], self._items(phases[0]))
                  if self.t.candidates_from else None)
        self.out.mkdir(parents=True, exist_ok=True)
        if check_run_folder(self.out, {"trainer": "stars", "arguments": self.t.arguments(),
                                       "model": self.model.identity()}, self.dist.is_main):
            self.log(f"resuming the stars run in {self.out}: finished stages are kept")
        summary: dict[str, Any] = {"phases": {}}
        for phase in phases:
            items = self._items(phase)
            self.log(f"stars {phase.name}: {len(items)} prompts x {self.t.k} candidates")
            self.stage1(phase, items, source if phase is phases[0] else None)
            acceptance = self.stage2(phase)
            training = self.stage3(phase, self.training_phases(phases, phase))
            summary["phases"][phase.name] = {"acceptance": acceptance["all"],
                                             "by_task": acceptance["by_task"],
                                             "by_level": acceptance["by_level"],
                                             "train": training,
                                             "seconds": self._stage_seconds(phase)}
        for judge in (self._judge, self._audit):
            if judge is not None:
                judge.close()
        done = self.out / "done.json"
        if done.is_file():  # a finished run run again: its record stands as written
            self.dist.barrier()
            return TrainResult(checkpoint=self.out / "model",
                               metrics=read_object(done, ("metrics",))["metrics"])
        # the stages' own wall times, added up: a run resumed after a crash counts every part
        stages = [v for p in summary["phases"].values() for v in p["seconds"].values() if v]
        metrics = self._metrics(summary, sum(stages))
        if self.dist.is_main:
            from .finetune import _save_model

            summary["metrics"] = metrics
            atomic_write_json(self.out / "summary.json", summary)
            _save_model(self.model, self.out / "model")
            atomic_write_json(self.out / "done.json", {"metrics": metrics})
        self.dist.barrier()
        return TrainResult(checkpoint=self.out / "model", metrics=metrics)

    def _items(self, phase: Phase) -> list[tuple[Task, Sample]]:
        """The phase's training prompts: every task's samples at the phase's levels."""
        return [(t, s) for t in self.tasks for s in t.samples() if level_of(s) in phase.levels]

    def _stage_seconds(self, phase: Phase) -> dict[str, float | None]:
        """Wall time of each stage, as its done marker recorded it (the run that did it)."""
        folder = self.out / phase.name
        out: dict[str, float | None] = {}
        for stage in (1, 2, 3):
            path = folder / f"stage{stage}.done"
            out[f"stage{stage}"] = read_object(path).get("seconds") if path.is_file() else None
        return out

    def _metrics(self, summary: dict[str, Any], seconds: float) -> dict[str, Any]:
        phases = summary["phases"]
        candidates = sum(p["acceptance"]["candidates"] for p in phases.values())
        accepted = sum(p["acceptance"]["accepted"] for p in phases.values())
        out: dict[str, Any] = {
            "phases": len(phases), "candidates": candidates, "accepted": accepted,
            "acceptance_rate": round(accepted / candidates, 4) if candidates else None,
            "train_steps": sum(p["train"].get("steps", 0) for p in phases.values()),
            "no_filter": self.t.no_filter, "order": self.t.order, "seconds": round(seconds, 1),
        }
        for name, p in phases.items():
            out[f"{name}.acceptance_rate"] = p["acceptance"]["rate"]
            if "precision" in p["acceptance"]:
                out[f"{name}.filter_precision"] = p["acceptance"]["precision"]
            if p["train"].get("loss_last") is not None:
                out[f"{name}.loss"] = f"{p['train']['loss_first']} -> {p['train']['loss_last']}"
        return out

    # --- stage I: candidates --------------------------------------------------------------
    def stage1(self, phase: Phase, items: Sequence[tuple[Task, Sample]],
               source: Path | None = None) -> None:
        """Generate ``k`` think-mode candidates per prompt, or copy them from ``source`` (the
        same phase of a run with the same model, prompts and seeds: ``candidates_from``)."""
        folder = self.out / phase.name
        done = folder / "stage1.done"
        if done.is_file():
            return
        if source is not None:
            if self.dist.is_main:
                self._copy_candidates(source, folder)
            self.dist.barrier()
            return
        log = JsonlLog(folder / "candidates.jsonl")
        if self.dist.is_main:
            folder.mkdir(parents=True, exist_ok=True)
            log.repair()
        self.dist.barrier()
        have = {key_of(r) for r in log.read()}
        todo = [(task, s, k) for task, s in items for k in range(self.t.k)
                if (task.name, s.id, k) not in have]
        if have:
            self.log(f"stars {phase.name} I: {len(have)} candidates drawn before, {len(todo)} to go")
        chunks = [todo[i : i + self.t.gen_batch] for i in range(0, len(todo), self.t.gen_batch)]
        t0 = time.perf_counter()
        bar = progress_bar(len(todo), f"{phase.name} I generate", "img",
                           self.t.progress and self.dist.is_main)
        world, rank = self.dist.world, self.dist.rank
        for start in range(0, len(chunks), world):
            mine = chunks[start + rank] if start + rank < len(chunks) else []
            records = self.dist.gather(self._generate(phase, folder, mine) if mine else [])
            if self.dist.is_main:
                log.append(records)
            bar.update(len(records))
        bar.close()
        if self.dist.is_main:
            atomic_write_json(done, {"candidates": len(have) + len(todo), "generated": len(todo),
                                     "seconds": round(time.perf_counter() - t0, 1)})
        self.dist.barrier()

    def _candidates_source(self, first: Phase, items: Sequence[tuple[Task, Sample]]) -> Path:
        """The phase folder of ``candidates_from`` that the first phase copies, once checked
        to hold this run's candidates: the same model and the same prompts, seeds and order."""
        source = Path(self.t.candidates_from)
        if source.resolve() == self.out.resolve():
            raise UserError(f"candidates_from is this run's own folder ({source})")
        record = source / "trainer.json"
        if not record.is_file():
            raise UserError(f"candidates_from: {source} is not a stars run folder (no trainer.json)")
        theirs = read_object(record)
        ours = as_json({"arguments": self.t.arguments(), "model": self.model.identity()})
        drew, draws = map(_drawing_model, resume_identities(theirs.get("model"), ours["model"]))
        if drew != draws:
            raise UserError(f"candidates_from: {source} was made from another model than this "
                            f"run's ({differences(drew, draws, 'model')})")
        mine, other = ours["arguments"], theirs.get("arguments", {})
        for key in STAGE1_ARGUMENTS:
            if other.get(key) != mine.get(key):
                raise UserError(f"candidates_from: {record} has {key}={other.get(key)!r}, this run "
                                f"{mine.get(key)!r}; its candidates are not this run's")
        if other.get("options", {}).get("seed") != mine["options"]["seed"]:
            raise UserError(f"candidates_from: {record} has another seed; its candidates are not "
                            "this run's")
        folder = source / first.name
        if not (folder / "stage1.done").is_file():
            raise UserError(f"candidates_from: {folder} has no finished stage I (stage1.done); "
                            "finish that run's stage I first")
        wanted = {(task.name, s.id, k) for task, s in items for k in range(self.t.k)}
        if {key_of(r) for r in JsonlLog(folder / "candidates.jsonl").read()} != wanted:
            raise UserError(f"candidates_from: {folder / 'candidates.jsonl'} holds other prompts "
                            "than this run's (another task version?)")
        return folder

    def _copy_candidates(self, source: Path, folder: Path) -> None:
        t0 = time.perf_counter()
        records = list(JsonlLog(source / "candidates.jsonl").read())
        bar = progress_bar(len(records), f"{folder.name} I copy", "img", self.t.progress)
        for r in records:
            parts = r["image"].split("/")
            target = inside(folder, *parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(inside(source, *parts), target)
            bar.update(1)
        bar.close()
        atomic_write_bytes(folder / "candidates.jsonl", jsonl_bytes(records))
        atomic_write_json(folder / "stage1.done",
                          {"candidates": len(records), "generated": 0, "copied_from": str(source),
                           "seconds": round(time.perf_counter() - t0, 1)})

    def _generate(self, phase: Phase, folder: Path,
                  chunk: Sequence[tuple[Task, Sample, int]]) -> list[dict[str, Any]]:
        requests = [GenerationRequest(s.prompt, "think",
                                      sample_seed(self.t.options.seed, task.name, s.id,
                                                  f"stars-r{phase.round}-k{k}"),
                                      temperature=self.t.think_temperature)
                    for task, s, k in chunk]
        t0 = time.perf_counter()
        generations = self.model.generate(requests)
        if len(generations) != len(requests):
            raise RuntimeError(f"model returned {len(generations)} images for {len(requests)} prompts")
        seconds = (time.perf_counter() - t0) / len(requests)
        records = []
        for (task, s, k), request, gen in zip(chunk, requests, generations, strict=True):
            path = inside(folder, "images", task.name, f"{s.id}-k{k}.png")
            save_png(path, gen.image)
            records.append({"task": task.name, "id": s.id, "k": k, "level": level_of(s),
                            "prompt": s.prompt, "seed": request.seed, "think": gen.think,
                            "image": path.relative_to(folder).as_posix(),
                            "t_generate": round(seconds, 4)})
        return records

    # --- stage II: judge and keep ---------------------------------------------------------
    def stage2(self, phase: Phase) -> dict[str, Any]:
        folder = self.out / phase.name
        done = folder / "stage2.done"
        if not done.is_file() and self.dist.is_main:
            self._judge_candidates(folder)
        self.dist.barrier()
        return read_object(folder / "acceptance.json", ("all",))

    def _judge_candidates(self, folder: Path) -> None:
        t0 = time.perf_counter()
        candidates = list(JsonlLog(folder / "candidates.jsonl").read())
        verdicts_log = JsonlLog(folder / "verdicts.jsonl")
        verdicts_log.repair()
        # a verdict that was an error (a judge server down, say) is asked again
        latest = {key_of(r): r for r in verdicts_log.read()}
        todo = [c for c in candidates
                if key_of(c) not in latest or latest[key_of(c)]["verdict"] == "error"]
        samples = {(t.name, s.id): (t, s) for t in self.tasks for s in t.samples()}
        for judge in (None if self.t.no_filter else self.judge, self.audit):
            if todo and judge is not None:
                judge.reach()  # a judge server that is down stops here, before any verdict
        bar = progress_bar(len(todo), f"{folder.name} II judge", "img", self.t.progress)
        for start in range(0, len(todo), self.t.gen_batch):
            chunk = todo[start : start + self.t.gen_batch]
            items = []
            for c in chunk:
                task, sample = samples[(c["task"], c["id"])]
                items.append(JudgeItem(task.name, task.family, sample, folder / c["image"]))
            verdicts: list[Verdict | None] = ([None] * len(items) if self.t.no_filter
                                              else self.judge.judge(items))
            audits: list[Verdict | None] = (self.audit.judge(items) if self.audit is not None
                                            else [None] * len(items))
            verdicts_log.append(
                _verdict_record(c, v, a, self.t.no_filter)
                for c, v, a in zip(chunk, verdicts, audits, strict=True))
            bar.update(len(chunk))
        bar.close()
        latest = {key_of(r): r for r in verdicts_log.read()}
        errors = [latest[key_of(c)] for c in candidates if latest[key_of(c)]["verdict"] == "error"]
        if errors:
            first = " ".join(str(errors[0].get("raw") or "").split())[:200]
            message = (f"{folder.name} stage II: {len(errors)} of {len(candidates)} verdicts are "
                       f"errors (the judge could not decide; the first: {first})")
            remote = callable(getattr(self._inner.get("judge"), "ping", None))
            if remote and len(errors) == len(candidates):
                # a judge server that answered nothing (HTTP errors on every call), not a
                # filter's choice; a local judge (self, glyph) that cannot decide rejects
                raise UserError(f"{message}; fix the judge and run the same command: the errors "
                                "are judged again")
            self.log(f"warning: {message}; they count as rejected")
        kept = [c for c in candidates if latest[key_of(c)]["accepted"]]
        atomic_write_bytes(folder / "accepted.jsonl", jsonl_bytes(kept))
        acceptance = acceptance_summary(candidates, latest, self.t.no_filter,
                                        self.t.audit_judge is not None)
        acceptance["judge"] = None if self.t.no_filter else self.judge.identity()
        atomic_write_json(folder / "acceptance.json", acceptance)
        atomic_write_json(folder / "stage2.done", {**acceptance["all"], "judged": len(todo),
                                                   "seconds": round(time.perf_counter() - t0, 1)})

    # --- stage III: fine-tune generation ----------------------------------------------------
    def stage3(self, phase: Phase, sources: Sequence[Phase] | None = None) -> dict[str, Any]:
        from .finetune import finetune

        folder = self.out / phase.name
        done = folder / "stage3.done"
        if done.is_file() and read_object(done).get("skipped"):
            return read_object(done)
        examples: list[tuple[str, Path, str | None]] = []
        digest = hashlib.sha256()
        for source in sources or [phase]:
            path = self.out / source.name / "accepted.jsonl"
            digest.update(source.name.encode() + b"\0" + path.read_bytes())
            examples += [(c["prompt"], path.parent / c["image"], c.get("think"))
                         for c in JsonlLog(path).read()]
        if not examples:
            result = {"skipped": "no accepted candidates", "steps": 0}
            if self.dist.is_main:
                atomic_write_json(done, result)
            self.dist.barrier()
            self.log(f"stars {phase.name}: no accepted candidates, nothing to train on")
            return result
        steps = phase.steps
        if steps is not None and self.t.max_epochs is not None:
            # a few accepted images are not worth hundreds of passes (they would be learnt by
            # heart): at most max_epochs passes over what this phase trains on
            cap = math.ceil(self.t.max_epochs * len(examples) / self.t.options.batch_size)
            if cap < steps:
                self.log(f"stars {phase.name}: {max(1, cap)} steps, not {steps}: max_epochs="
                         f"{self.t.max_epochs:g} passes over {len(examples)} accepted image(s)")
            steps = max(1, min(steps, cap))
        options = attrs.evolve(self.t.options, steps=steps,
                                seed=sample_seed(self.t.options.seed, "stars", phase.name, "train"))
        model = self.model
        weight, keep = self.t.distill, self.t.keep_think
        teachers = self._teachers(folder, examples, digest.hexdigest()) if weight or keep else None
        if weight:
            digest.update(f"distill={weight}".encode())
        if keep:
            digest.update(f"keep_think={keep}".encode())
        cut = None
        if self.t.internalize:
            digest.update(f"internalize={self.t.internalize}".encode())
            cut = Internalization([t for _, _, t in examples],
                                  self.t.internalize * options.total_steps(len(examples)))

        def loss_fn(batch: Sequence[int], seed: int, step: int) -> Any:
            prompts = [examples[i][0] for i in batch]
            images = [_image(examples[i][1]) for i in batch]
            if teachers is None and cut is None:
                return model.generation_loss(prompts, images, seed)
            # one LM pass serves both terms: the image loss reuses the condition it distils
            thinks = None if cut is None else [cut(examples[i][2], step) for i in batch]
            condition = model.generation_condition(prompts, thinks)
            if teachers is None:
                return model.generation_loss(prompts, images, seed, condition=condition)
            target = teachers[list(batch)].to(condition.device)
            loss = model.generation_loss(prompts, images, seed, condition=condition)
            if weight:
                loss = loss + weight * (condition - target).pow(2).mean()
            if keep:  # the prompt with its reasoning still gives the condition it gave
                thought = model.generation_condition(prompts, [examples[i][2] for i in batch])
                loss = loss + keep * (thought - target).pow(2).mean()
            return loss

        metrics = finetune(model, "generation", range(len(examples)), loss_fn, options, folder / "train",
                           data_key=digest.hexdigest(),
                           desc=f"{phase.name} III train", progress=self.t.progress,
                           log=self.log)
        metrics = {**metrics, **({"distill": weight} if weight else {}),
                   **({"keep_think": keep} if keep else {})}
        if self.dist.is_main and not done.is_file():
            atomic_write_json(done, metrics)
        self.dist.barrier()
        return metrics

    def _teachers(self, folder: Path, examples: Sequence[tuple[str, Path, str | None]],
                  key: str) -> torch.Tensor:
        """The condition that drew each training image: the model's condition for the prompt
        and its own reasoning, as the model stands before this stage III trains it. Computed
        once and kept in ``teachers.safetensors``: a resumed stage III has trained parameters
        already and must not compute them again."""
        path = folder / "teachers.safetensors"
        if self.dist.is_main and (not path.is_file() or _teachers_key(path) != key):
            chunks = []
            bar = progress_bar(len(examples), f"{folder.name} III teachers", "img", self.t.progress)
            with torch.no_grad():
                for start in range(0, len(examples), self.t.gen_batch):
                    chunk = examples[start : start + self.t.gen_batch]
                    chunks.append(self.model.generation_condition([p for p, _, _ in chunk],
                                                                  [t for _, _, t in chunk]))
                    bar.update(len(chunk))
            bar.close()
            tmp = path.with_name(f".{path.name}.tmp")
            save_file({"teachers": torch.cat(chunks).float().contiguous().cpu()}, str(tmp),
                      metadata={"key": key})
            tmp.replace(path)
        self.dist.barrier()
        return load_file(str(path))["teachers"]


def _drawing_model(identity: Any) -> Any:
    """The identity of the model that draws stage I's candidates: without the parts its
    generation path was given to train, which are inert until stage III trains them."""
    if not isinstance(identity, dict):
        return identity
    return {k: v for k, v in identity.items() if k != GENERATION_PARTS}


def _teachers_key(path: Path) -> str | None:
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("key")


# --- helpers --------------------------------------------------------------------------------
def _verdict_record(candidate: dict[str, Any], verdict: Verdict | None, audit: Verdict | None,
                    no_filter: bool) -> dict[str, Any]:
    record = {"task": candidate["task"], "id": candidate["id"], "k": candidate["k"],
              "level": candidate["level"],
              "verdict": verdict.verdict if verdict else None,
              "raw": verdict.raw if verdict else "",
              "description": verdict.description if verdict else "",
              "accepted": no_filter or (verdict is not None and verdict.verdict == "yes")}
    if audit is not None:
        record["audit"] = audit.verdict
        record["audit_raw"] = audit.raw
    return record


def acceptance_summary(candidates: Sequence[dict[str, Any]], verdicts: dict[Key, dict[str, Any]],
                       no_filter: bool, audited: bool) -> dict[str, Any]:
    """Acceptance per task, per level and overall; with an audit judge, also how right the
    candidates were (think-mode accuracy) and how precise the filter was."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {"by_task": defaultdict(list),
                                                          "by_level": defaultdict(list)}
    everything = []
    for c in candidates:
        v = verdicts[key_of(c)]
        groups["by_task"][c["task"]].append(v)
        groups["by_level"][str(c["level"])].append(v)
        everything.append(v)

    def cell(vs: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(vs)
        accepted = sum(v["accepted"] for v in vs)
        out: dict[str, Any] = {
            "candidates": n, "accepted": accepted, "rate": round(accepted / n, 4) if n else None,
            "judge_yes": sum(v["verdict"] == "yes" for v in vs),
            "judge_no": sum(v["verdict"] == "no" for v in vs),
            "judge_errors": sum(v["verdict"] == "error" for v in vs),
        }
        if audited:
            right = [v for v in vs if v.get("audit") == "yes"]
            kept_right = sum(v["accepted"] for v in right)
            out.update(audit_right=len(right),
                       audit_accuracy=round(len(right) / n, 4) if n else None,
                       precision=round(kept_right / accepted, 4) if accepted else None,
                       recall=round(kept_right / len(right), 4) if right else None)
        return out

    return {"no_filter": no_filter,
            "by_task": {k: cell(v) for k, v in sorted(groups["by_task"].items())},
            "by_level": {k: cell(v) for k, v in sorted(groups["by_level"].items())},
            "all": cell(everything)}


def _image(path: Path) -> Any:
    """A candidate image the run wrote; one damaged since is named, not a traceback."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UserError(f"{path}: not a readable image ({why}); the run folder is damaged: "
                        "delete this phase's folder (round*-level*) to draw its candidates "
                        "again") from None


