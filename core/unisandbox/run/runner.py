"""generate -> judge -> aggregate, batched, resumable, shardable.

Work is cut into chunks of ``batch_size`` consecutive samples of one (task, mode); a chunk's
records are appended to ``samples.jsonl`` in one write after its images are on disk. A
restarted run skips what the log holds, and because seeds depend only on (run seed, task,
sample id, mode), it ends with the same results as an uninterrupted run. Under torchrun the
chunks are dealt round-robin to ranks and rank 0 writes the log.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__, capabilities
from ..distributed import get_dist
from ..errors import UserError
from ..factories import argument_defaults, build, judge_task_context
from ..judges.cache import CachedJudge
from ..progress import bar as progress_bar
from ..protocols import WEIGHTS_FINGERPRINT, Model, Task, resume_identities, returns
from ..records import UNDERSTANDING, GenerationRequest, JudgeItem, Sample, Verdict
from ..registry import Registry, get_registry
from ..specs import origins
from .aggregate import aggregate_task
from .config import RunConfig
from .seeds import sample_seed
from .store import RunStore, differences, save_png

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class Runner:
    """Evaluate one model on some tasks with one judge, into one run folder."""

    def __init__(
        self,
        config: RunConfig,
        registry: Registry | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        model: Model | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or get_registry()
        self.progress = progress
        self.store = RunStore(config.out)
        self.dist = get_dist()
        # under torchrun one process says what the run does (each rank would repeat it)
        self.log = log or (lambda message: print(message, file=sys.stderr) if self.dist.is_main else None)
        self._model = model
        self._model_checked = False
        self._done: dict[tuple[str, str, str], Any] = {}  # the latest record per sample, read on resume
        self._started_here = False  # this process wrote config.json: a new run, or one taken over
        self._judge: CachedJudge | None = None
        self.model_spec = self.registry.model(config.model.name)
        # a run that draws nothing (U alone) has no judge
        self.judge_spec = self.registry.judge(config.judge.name) if config.judge else None
        self.task_specs = [self.registry.task(t.name) for t in config.tasks]
        self._check_capabilities()
        self.tasks: list[Task] = [build(spec, comp.args) for spec, comp in
                                  zip(self.task_specs, config.tasks, strict=True)]
        names = [t.name for t in self.tasks]
        for i, name in enumerate(names):
            if name in names[:i]:
                first = config.tasks[names.index(name)]
                if first == config.tasks[i]:
                    raise UserError(f"task {first.name!r} is given twice; give each task once")
                raise UserError(f"two tasks are both named {name!r} ({first.name} {first.args} and "
                                f"{config.tasks[i].name} {config.tasks[i].args}): each task's images "
                                "and results are kept under its name; tell them apart (a file task "
                                "takes name=)")

    # --- set-up -------------------------------------------------------------------------
    def _check_capabilities(self) -> None:
        have = self.model_spec.capabilities
        need: dict[str, str] = {}
        if self.config.modes:
            need[capabilities.GENERATE] = "generation modes " + ",".join(self.config.modes)
        if self.config.understanding:
            need[capabilities.CHAT] = "measuring U (use --no-understanding to skip)"
        for cap in self.judge_spec.requires if self.judge_spec else ():
            need[cap] = f"judge {self.judge_spec.name!r}"
        for spec in self.task_specs:
            if spec.analysis:
                raise UserError(f"task {spec.name!r} is an analysis task (a probe); run it with "
                                "`unisandbox probe`, not `eval`")
            for cap in spec.requires:
                need[cap] = f"task {spec.name!r}"
        missing = {c: why for c, why in need.items() if c not in have}
        if missing:
            detail = "; ".join(f"{c} (needed by {why})" for c, why in missing.items())
            raise UserError(f"model {self.model_spec.name!r} lacks {detail}")

    @property
    def model(self) -> Model:
        if self._model is None:
            self.log(f"loading model {self.model_spec.name} ...")
            self._model = build(self.model_spec, self.config.model.args)
        if not self._model_checked:
            self._check_model(self._model)
            self._model_checked = True
        return self._model

    def _check_model(self, model: Model) -> None:
        """The model's identity (its weights' fingerprint, its settings) is recorded in
        config.json when it first loads; a resume on another model (a checkpoint retrained in
        the same folder) is refused, or one run would mix the images of two models."""
        identity = json.loads(json.dumps(model.identity(), default=str))
        existing = self.store.read_config() or {}
        recorded = existing.get("model_identity")
        if isinstance(recorded, dict):
            was, now = resume_identities(recorded, identity)
            if was != now:
                what = differences(was, now, "model")
                raise UserError(f"{self.store.root} was started with another model ({what}); resume "
                                "it only with the same weights and settings, or choose another --out")
        elif self.dist.is_main:
            self.store.write_config({**existing, "model_identity": identity})

    @property
    def judge(self) -> CachedJudge:
        if self._judge is None:
            if self.judge_spec is None or self.config.judge is None:
                raise RuntimeError("this run draws no image and has no judge")  # the loop never asks
            # judges that borrow the model under test get a loader, so nothing heavy loads
            # before the run folder is checked
            context = {"model_loader": lambda: self.model} if self.judge_spec.requires else {}
            context.update(judge_task_context(self.judge_spec, self.tasks))
            inner = build(self.judge_spec, self.config.judge.args, **context)
            self._judge = CachedJudge(inner, self.store.judge_cache_path, rank=self.dist.rank)
        return self._judge

    def resolved_config(self) -> dict[str, Any]:
        judge_identity = self.judge.identity() if self.config.modes and self.judge_spec else None
        return json.loads(json.dumps({  # as config.json reads back (a tuple is a list there)
            "unisandbox": __version__,
            "run": self.config.to_json(),
            "tasks": {t.name: t.identity() for t in self.tasks},
            "judge_identity": judge_identity,
            "plugins": self.registry.versions(),
            "specs": origins([self.model_spec, self.judge_spec, *self.task_specs]),
        }))

    def _refuse_other_kind(self) -> None:
        """A folder holding a probe, a score or anything else is not written to at all (not
        even the writer's lock)."""
        existing = self.store.read_config()
        other = _other_kind(existing) if existing is not None else None
        if other:
            raise UserError(f"{self.store.root} holds a {other}, not an eval run (its config.json says "
                            "so); evaluate into a folder of its own (--out), so that one is not overwritten")
        if existing is None and self.store.root.is_dir():
            held = sorted(p.name for p in self.store.root.iterdir() if p.name != self.store.LOCK_NAME)
            if self.store.samples.path.name in held:  # a run whose config.json is gone
                raise UserError(f"{self.store.root} holds samples.jsonl but no config.json, so its "
                                "records cannot be checked against this command (other items or "
                                "seeds would be scored as these); put config.json back, or choose "
                                "another --out")
            if held:
                shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
                raise UserError(f"{self.store.root} is not empty and holds no run ({shown}); "
                                "evaluate into a new or empty folder (--out), so nothing of yours "
                                "is mixed in or overwritten")

    def _prepare_folder(self) -> None:
        resolved = self.resolved_config()
        existing = self.store.read_config()
        self.dist.barrier()  # every rank has looked before rank 0 writes: a new run is new to all
        # U alone judges nothing: a judge a run of before recorded decides nothing either
        checked = ("run", "tasks", "judge_identity") if self.config.modes else ("run", "tasks")
        # a model recorded with its weights' fingerprint may come from another path (a copy,
        # a path spelt another way): the fingerprint is checked when the model loads
        recorded = (existing or {}).get("model_identity")
        moved = isinstance(recorded, dict) and recorded.get(WEIGHTS_FINGERPRINT) is not None

        defaults = {"model": _defaults_of([self.model_spec]), "judge": _defaults_of([self.judge_spec]),
                    "task": _defaults_of(self.task_specs)}

        def resumable(section: Any, name: str) -> Any:
            return _resumable(section, name, ignore_path=moved, defaults=defaults)

        changed = [k for k in checked
                   if existing is not None and resumable(existing.get(k), k) != resumable(resolved[k], k)]
        if changed and next(iter(self.store.samples.read()), None) is None:
            # a start that failed before it recorded anything (a bad --model-arg, say): the
            # corrected command takes the folder over, there is nothing to keep
            self.log(f"{self.store.root} recorded no sample under its old configuration; replacing it")
            existing = None
        if existing is not None:
            if changed:
                what = differences(resumable(existing[changed[0]], changed[0]),
                                   resumable(resolved[changed[0]], changed[0]), changed[0])
                raise UserError(f"{self.store.root} holds a different run ({what}); resume only "
                                "with the same configuration, or choose another --out")
            self.log(f"resuming run in {self.store.root}")
            self._done = self.store.records()  # a damaged log stops the resume before any write
            existing = self._note_new_versions(existing, resolved)
            was, now = (_filled(r, defaults) if isinstance(r, dict) else r
                        for r in (existing.get("run"), resolved["run"]))
            if was != now:  # an argument now given at its default, or left out: no change
                what = differences(was, now, "run")
                self.log(f"  with {what} (these decide no verdict; config.json records them)")
                if self.dist.is_main:
                    self.store.write_config({**existing, "run": resolved["run"]})
        else:
            self._started_here = True
        # every rank must take the same decision (a rank that resumed while the others start
        # afresh would take other batches): said, not assumed
        if len(set(self.dist.gather([self._started_here]))) > 1:
            raise RuntimeError(f"{self.store.root}: the processes disagree on whether this run is "
                               "new or resumed (another process wrote to the folder meanwhile?)")
        if self._started_here and self.dist.is_main:
            self.store.write_config(resolved)
        self.dist.barrier()
        if self.dist.is_main:
            self.store.samples.repair()
            stale = self.store.remove_stale_temporaries()
            if stale:
                self.log(f"  removed {stale} half-written file(s) an interrupted run left")
        self.dist.barrier()

    def _note_new_versions(self, existing: dict[str, Any], resolved: dict[str, Any]) -> dict[str, Any]:
        """A resume under other versions of the components' code is allowed (a bug fix that
        changes no item, say) but said, and recorded under ``resumed_with`` in config.json:
        what is drawn from here on comes from the new code."""
        old = {**(existing.get("specs") or {}), "unisandbox": existing.get("unisandbox")}
        new = {**resolved["specs"], "unisandbox": resolved["unisandbox"]}
        changed = [f"{k}: {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) not in (None, v)]
        if not changed:
            return existing
        if self.dist.is_main:
            print(f"warning: resuming {self.store.root} with other versions ({'; '.join(changed)}); "
                  "what is drawn from here on comes from them (config.json records it under "
                  "resumed_with)", file=sys.stderr)
        seen = existing.get("resumed_with") if isinstance(existing.get("resumed_with"), list) else []
        if new in seen:
            return existing
        updated = {**existing, "resumed_with": [*seen, new]}
        if self.dist.is_main:
            self.store.write_config(updated)
        return updated

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self._refuse_other_kind()
        fresh = not self.store.root.exists()
        with contextlib.ExitStack() as held:
            # one writer at a time: a "resume" typed while the run is still going is refused
            # before any rank touches the folder (a log or judge-cache repair would cut the
            # running launch's half-written line); rank 0 holds the lock, every rank learns
            refused = ""
            if self.dist.is_main:
                try:
                    held.enter_context(self.store.writing())
                except (UserError, OSError) as exc:  # busy, or --out not writable: every rank stops
                    refused = str(exc) if isinstance(exc, UserError) else \
                        f"{exc.filename or self.store.root}: {exc.strerror or exc}"
            refused = next((r for r in self.dist.gather([refused]) if r), "")
            if refused:
                raise UserError(refused)
            try:
                self._prepare_folder()
                return self._run()
            except BaseException:
                if self._started_here and self.dist.is_main:  # a start that failed before its
                    self.store.remove_unstarted(fresh)  # first record leaves nothing (held: ours)
                elif fresh and self.dist.is_main:  # a start refused at once leaves no folder behind
                    self.store.remove_if_empty()  # (done holding the lock: no one else's folder)
                raise

    def _run(self) -> dict[str, Any]:
        done = self._done
        for task in self.tasks:
            samples = list(task.samples())
            for mode in self.config.modes:
                self._stage(task, samples, mode, done)
            if self.config.understanding:
                self._stage(task, samples, UNDERSTANDING, done)
            if self.dist.is_main:
                self.store.write_results(self.results())
        if self._judge is not None:
            self._judge.close()
        if self.dist.is_main:
            for line in problems(self.store):
                print(line, file=sys.stderr)
        self.dist.barrier()
        return self.store.read_results()

    def _stage(self, task: Task, samples: list[Sample], mode: str,
               done: dict[tuple[str, str, str], Any]) -> None:
        if mode != UNDERSTANDING:
            self._draw_missing_again(task, mode, done)
            self._judge_again(task, samples, mode, done)
        pending = [c for c in chunks(samples, self.config.batch_size)
                   if any((task.name, mode, s.id) not in done for s in c)]
        if not pending:
            return
        total = sum(1 for c in pending for s in c if (task.name, mode, s.id) not in done)
        _ = self.model  # loaded (or refused with its error) before the progress bar starts
        if mode != UNDERSTANDING:
            self._reach_judge()
        dist = self.dist
        bar = progress_bar(total, f"{task.name} {mode}", "sample", self.progress and dist.is_main)
        for step in range(0, len(pending), dist.world):
            mine = pending[step + dist.rank] if step + dist.rank < len(pending) else []
            batch = [s for s in mine if (task.name, mode, s.id) not in done]
            try:
                records = self._process(task, mode, batch) if batch else []
            except Exception as exc:  # a plugin's bug: say where it happened and that nothing is lost
                note = getattr(exc, "add_note", None)
                if note is not None and not isinstance(exc, UserError):
                    note(f"unisandbox: in task {task.name}, mode {mode}, samples "
                         f"{', '.join(str(s.id) for s in batch[:4])}{' ...' if len(batch) > 4 else ''}; "
                         f"what {self.store.root} holds is kept: run the same command to resume")
                raise
            records = dist.gather(records)
            if dist.is_main:
                self.store.samples.append(records)
            for r in records:
                done[(r["task"], r["mode"], r["id"])] = r
            bar.update(len(records))
        bar.close()

    def _reach_judge(self) -> None:
        """The judge's server is asked before the first image is drawn: one that is down
        stops the run now, not after hours of generation."""
        self.judge.reach()

    def _draw_missing_again(self, task: Task, mode: str, done: dict[tuple[str, str, str], Any]) -> None:
        """On resume, a recorded image that is gone from the folder (deleted, a copy that
        lost it) makes its sample pending again: drawn with its own seed (the same picture) and
        judged, a new record replacing the stale one, so no verdict stands without its image."""
        gone = [key for key, r in done.items() if key[0] == task.name and key[1] == mode
                and (not r.get("image") or not self.store.recorded_path(r["image"]).is_file())]
        for key in gone:
            del done[key]
        if gone and self.dist.is_main:
            self.log(f"{task.name} {mode}: {len(gone)} recorded image(s) are gone from the folder; "
                     "drawing them again")

    def _judge_again(self, task: Task, samples: list[Sample], mode: str,
                     done: dict[tuple[str, str, str], Any]) -> None:
        """On resume, judge again the saved images whose verdict was an error (a judge server
        that was down, say): the images stay, only the verdicts are new records. Rank 0 alone."""
        by_id = {s.id: s for s in samples}
        failed = [(r, by_id[r["id"]], self.store.recorded_path(r["image"]))
                  for (t, m, _), r in done.items()
                  if t == task.name and m == mode and r.get("verdict") == "error"
                  and r["id"] in by_id and r.get("image")]
        if not failed or not self.dist.is_main:
            return
        self.log(f"{task.name} {mode}: judging again {len(failed)} image(s) whose verdict was an error")
        for chunk in chunks(failed, self.config.batch_size):
            verdicts = self.judge.judge([JudgeItem(task.name, task.family, s, p) for _, s, p in chunk])
            # a judge that gives the same error again (an unreadable image) adds no record
            records = [{**r, **v.fields()} for (r, _, _), v in zip(chunk, verdicts, strict=True)
                       if v.verdict != "error" or v.raw != r.get("judge_raw")]
            self.store.samples.append(records)
            for r in records:
                done[(r["task"], r["mode"], r["id"])] = r

    def _process(self, task: Task, mode: str, batch: list[Sample]) -> list[dict[str, Any]]:
        if mode == UNDERSTANDING:
            return self._understand(task, batch)
        requests = [GenerationRequest(s.prompt, mode, sample_seed(self.config.seed, task.name, s.id, mode))
                    for s in batch]
        t0 = time.perf_counter()
        generations = returns.generations(self.model, self.model.generate(requests), len(batch))
        paths = []
        for sample, gen in zip(batch, generations, strict=True):
            path = self.store.image_path(task.name, mode, task.image_name(sample))
            save_png(path, gen.image)
            paths.append(path)
        t1 = time.perf_counter()
        verdicts = self.judge.judge([JudgeItem(task.name, task.family, s, p) for s, p in zip(batch, paths, strict=True)])
        t2 = time.perf_counter()
        return [
            {**_base(task, mode, s), "prompt": s.prompt, "seed": r.seed, "think": g.think,
             "image": self.store.relative(p), "expected": s.answer, **v.fields(),
             "t_generate": (t1 - t0) / len(batch), "t_judge": (t2 - t1) / len(batch)}
            for s, r, g, p, v in zip(batch, requests, generations, paths, verdicts, strict=True)
        ]

    def _understand(self, task: Task, batch: list[Sample]) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        replies = returns.returned(self.model, "chat", self.model.chat([s.question for s in batch]), str,
                                   len(batch))
        elapsed = (time.perf_counter() - t0) / len(batch)
        return [
            {**_base(task, UNDERSTANDING, s), "question": s.question, "reply": reply,
             "expected": s.question_answer,
             "verdict": "yes" if task.check_understanding(s, reply) else "no", "t_chat": elapsed}
            for s, reply in zip(batch, replies, strict=True)
        ]

    # --- results ------------------------------------------------------------------------
    def results(self) -> dict[str, Any]:
        return compute_results(self.store, self.tasks, self.config.modes,
                               self.config.reference_scoring)


def _base(task: Task, mode: str, sample: Sample) -> dict[str, Any]:
    return {"task": task.name, "mode": mode, "id": sample.id, "level": sample.level,
            "group": sample.group}


def compute_results(store: RunStore, tasks: Sequence[Task], modes: Sequence[str],
                    reference_scoring: bool) -> dict[str, Any]:
    """results.json for the records the log holds now."""
    records = store.records()
    out: dict[str, Any] = {"scoring": "reference" if reference_scoring else "default",
                           "modes": list(modes), "tasks": {}}
    for task in tasks:
        mine = {(m, sid): r for (t, m, sid), r in records.items() if t == task.name}
        out["tasks"][task.name] = {
            "family": task.family,
            "unit": task.unit,
            "chance": getattr(task, "chance", None),
            "levels": aggregate_task(list(task.samples()), mine, unit=task.unit, modes=modes,
                                     reference_scoring=reference_scoring),
        }
    return out


MISSING_IMAGE = "missing image"


def missing_image_verdict(path: Path, why: str = "") -> Verdict:
    """A missing image is the generator's failure, scored wrong (as the original does); so
    is a file that is no image (``why``: what reading it said), or it would leave n as a
    judge's error does and score better than a missing one."""
    if why:
        return Verdict("no", raw=f"{MISSING_IMAGE} {path.name}: unreadable ({why})",
                       description="Error: unreadable image")
    return Verdict("no", raw=f"{MISSING_IMAGE} {path.name}", description="Error: missing image")


def problems(store: RunStore, images_from: Path | None = None) -> list[str]:
    """Warnings about a finished run's records: verdicts the judge could not give (an
    unreachable server shows up here, not as an exit code) and images that were not there
    (``images_from``: the folder they were looked for in, when scoring another tool's)."""
    records = list(store.records().values())
    errors = [r for r in records if r.get("verdict") == "error"]
    missing = [r for r in records if str(r.get("judge_raw") or "").startswith(MISSING_IMAGE)]
    out = []
    if errors:
        first = errors[0]
        raw = " ".join(str(first.get("judge_raw") or "").split())[:240]
        out.append(f"warning: {len(errors)} of {len(records)} verdicts are errors (the judge could not "
                   f"decide; left out of n unless --reference-scoring); the first, "
                   f"{first['task']}/{first['mode']}/{first['id']}: {raw}")
    if missing:
        where = f" in {images_from}" if images_from is not None else ""
        out.append(f"warning: {len(missing)} of {len(records)} images were not found or not "
                   f"readable{where} (scored wrong), e.g. {Path(missing[0]['image']).name}")
    return out


def _other_kind(config: dict[str, Any]) -> str | None:
    """What a folder's config.json says it holds when that is not an eval run (a score folder
    names its kind, a probe's has a "probe" section, an eval run's a "run" one)."""
    if config.get("kind"):
        return str(config["kind"])
    if "probe" in config:
        return "probe"
    return None if "run" in config else "folder"


def _filled(run: dict[str, Any], defaults: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """A run section with every component's arguments filled in with their defaults."""
    if not defaults:
        return run
    out = {**run}
    for key in ("model", "judge"):
        if key in out:
            out[key] = _with_defaults(out[key], defaults.get(key, {}))
    if isinstance(out.get("tasks"), list):
        out["tasks"] = [_with_defaults(t, defaults.get("task", {})) for t in out["tasks"]]
    return out


def _with_defaults(component: Any, defaults: dict[str, dict[str, Any]]) -> Any:
    """``{"name", "args"}`` with every argument the factory names and was not given at its
    default (``size=32`` where 32 is the default is the run started without it; a refusal
    then says ``size: 32 -> 64``, never "(absent)")."""
    if not isinstance(component, dict) or not isinstance(component.get("args"), dict):
        return component
    return {**component, "args": {**defaults.get(str(component.get("name")), {}), **component["args"]}}


def _defaults_of(specs: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Each component's argument defaults as config.json would hold them (required arguments
    have none; a ``**kwargs`` factory's other arguments neither)."""
    return {spec.name: json.loads(json.dumps({k: d for k, d in argument_defaults(spec)
                                              if d is not inspect.Parameter.empty}, default=str))
            for spec in specs if spec is not None}


#: judge arguments that say how to reach a judge, never what it decides: a resume may change
#: them (a server come back elsewhere, more concurrency); any other argument must match, since
#: a plugin judge need not put what decides its verdicts into its identity
REACH_ARGS = frozenset({"base_url", "api_key_env", "concurrency", "timeout", "retries", "backoff",
                        "batch_size"})


def _resumable(section: Any, name: str, ignore_path: bool = False,
               defaults: dict[str, dict[str, dict[str, Any]]] | None = None) -> Any:
    """What of a run's configuration a resume must match: not the batch size (each sample's
    seed is its own), not how the judge is reached (``REACH_ARGS``), not the order of the
    modes, not the judge of a run that draws no image, not an argument given at its default
    (``defaults``: kind -> component -> argument -> its default); with
    ``ignore_path``, not the model's ``path`` (its weights' fingerprint decides, when the
    model loads)."""
    if name != "run" or not isinstance(section, dict):
        return section
    kept = {k: v for k, v in _filled(section, defaults or {}).items() if k != "batch_size"}
    model = kept.get("model")
    if ignore_path and isinstance(model, dict) and isinstance(model.get("args"), dict):
        kept["model"] = {**model, "args": {k: v for k, v in model["args"].items() if k != "path"}}
    if kept.get("modes") == []:  # U alone: a judge named or not decides nothing
        kept.pop("judge", None)
    judge = kept.get("judge")
    if isinstance(judge, dict) and isinstance(judge.get("args"), dict):
        kept["judge"] = {**judge, "args": {k: v for k, v in judge["args"].items() if k not in REACH_ARGS}}
    if isinstance(kept.get("modes"), list):
        kept["modes"] = sorted(kept["modes"])
    return kept
