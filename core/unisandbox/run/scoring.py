"""Bring your own images: judge a folder another tool produced, as a run folder of our own."""

from __future__ import annotations

import filecmp
import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError
from ..factories import build, judge_task_context
from ..judges.cache import CachedJudge
from ..judges.report_csv import CSV_NAME, write_evaluation_csv
from ..paths import safe_name
from ..progress import bar as progress_bar
from ..protocols import Task
from ..records import JudgeItem
from ..registry import get_registry
from ..specs import origins
from .runner import chunks, compute_results, missing_image_verdict, problems
from .store import RunStore, differences

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _find_image(folder: Path, file_name: str) -> Path | None:
    """``<id>.png`` or the same stem with another common image suffix, inside ``folder``.

    A sample id is data, not a path: one that names a file elsewhere (``../x``, ``/x``) is
    refused rather than read from outside the folder being scored."""
    if Path(file_name).name != file_name or file_name in ("", ".", ".."):
        raise UserError(f"sample image name {file_name!r} is not a plain file name in {folder}; "
                        "ids with path separators cannot be matched to images")
    candidate = folder / file_name
    if candidate.is_file():
        return candidate
    stem = Path(file_name).stem
    for suffix in IMAGE_SUFFIXES:
        if (folder / (stem + suffix)).is_file():
            return folder / (stem + suffix)
    return None


def _unreadable(path: Path) -> str:
    """Why an image file cannot be read ("" when it can): a truncated or mislabelled file is
    the generator's output failing, not a judge's. A PNG is checked by ``verify`` (its chunks
    and checksums, without decoding the pixels the judge decodes next); other formats, whose
    ``verify`` checks little (a truncated JPEG passes), are decoded."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                image.verify()
            else:
                image.load()
    except Image.DecompressionBombError:
        return ""  # decodable; the judge says what it makes of it
    except (OSError, SyntaxError, ValueError) as exc:
        return " ".join(str(exc).split())[:160] or type(exc).__name__
    return ""


def _found_images(folder: Path, task: Task, samples: list[Any], run: RunStore | None,
                  mode: str) -> list[Path | None]:
    """Each sample's image in ``folder`` (None: missing), found before anything is written;
    refuses a folder that holds none of them (a wrong folder, task or mode, or another naming
    scheme would score 0 % with every image "missing") and ids that are not plain file names."""
    if not folder.is_dir():
        what = f"no images of task {task.name!r} in mode {mode!r}" if run is not None else "no such folder"
        raise UserError(f"{folder}: {what}")
    names = [task.image_name(s) for s in samples]
    if run is not None:  # where eval saved them: the run's own safe names (ids with spaces, /)
        saved = [run.image_path(task.name, mode, name) for name in names]
        found: list[Path | None] = [p if p.is_file() else None for p in saved]
    else:
        found = [_find_image(folder, name) for name in names]  # every name checked, all up front
    if samples and not any(found):
        present = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        held = f"it holds {', '.join(present[:3])}{' ...' if len(present) > 3 else ''}" if present \
            else "it holds no images"
        raise UserError(f"{folder}: none of the {len(names)} images task {task.name!r} expects is "
                        f"there (named like {', '.join(names[:3])}; {held})")
    return found


def _scoring(config: Mapping[str, Any]) -> dict[str, Any]:
    """What decides a score config's verdicts: the images, the answers, the judge, the mode."""
    return {"source": config.get("source"), "tasks": config.get("tasks"),
            "judge_identity": config.get("judge_identity"),
            "modes": (config.get("run") or {}).get("modes")}


def _set_aside(store: RunStore, source: Path, foreign: bool) -> Path:
    """Keep an earlier, different scoring whole (its log, images, config, results and sheet)
    in ``replaced-N/``, itself a score folder that ``unisandbox report`` reads: the new scoring
    starts empty and overwrites nothing the earlier one's records name. Another tool's folder
    (``foreign``) keeps all but the files a score writes; nothing that holds the images being
    scored moves."""
    n = 1
    while (kept := store.root / f"replaced-{n}").exists():
        n += 1
    kept.mkdir()
    names = (store.results_path.name, CSV_NAME, "images") if foreign else (
        store.samples.path.name, "images", store.config_path.name, store.results_path.name, CSV_NAME)
    for name in names:
        entry = store.root / name
        if entry.exists() and not source.resolve().is_relative_to(entry.resolve()):
            entry.rename(kept / name)
    return kept


def _changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    fields = ("verdict", "judge_raw", "description", "image", "prompt", "expected")
    return old is None or any(old.get(f) != new.get(f) for f in fields)


def score_images(
    source: Path,
    *,
    task_name: str,
    task_args: Mapping[str, Any],
    judge_name: str,
    judge_args: Mapping[str, Any],
    mode: str = "normal",
    out: Path | None = None,
    reference_scoring: bool = False,
    progress: bool = True,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Judge the images in ``source`` for every sample of the task; returns results.json."""
    registry = get_registry()
    task_spec, judge_spec = registry.task(task_name), registry.judge(judge_name)
    if judge_spec.requires:
        raise UserError(f"judge {judge_name!r} needs the model under test; score with a judge "
                        "that looks only at the image (e.g. glyph, vlm-openai)")
    task: Task = build(task_spec, task_args)
    is_run = (source / "config.json").is_file() and (source / "images").is_dir()
    if source.is_file():
        folder, single = source.parent, source
    else:
        folder, single = (RunStore(source).image_dir(task.name, mode) if is_run else source), None
    out = out or (source / f"score-{safe_name(judge_name)}-{safe_name(mode)}" if is_run
                  else folder / "score")
    store = RunStore(out)
    samples = list(task.samples())
    if single is not None and len(samples) != 1:
        raise UserError(f"{source} is one image but task {task.name!r} has {len(samples)} samples; "
                        "pass the folder that holds them")
    found_at = ([single] * len(samples) if single is not None
                else _found_images(folder, task, samples, RunStore(source) if is_run else None, mode))

    # re-scoring a run folder reads that run's cache (the same judge makes no calls) and
    # writes new verdicts to the score folder's own: the run is never written to
    run_cache = source / "judge_cache.jsonl"
    judge = CachedJudge(build(judge_spec, judge_args, **judge_task_context(judge_spec, [task])),
                        store.judge_cache_path,
                        read_from=[run_cache] if is_run and run_cache.is_file() else [])
    config = {"unisandbox": __version__, "kind": "score", "source": str(source.resolve()),
              "run": {"model": {"name": "external", "args": {}}, "modes": [mode],
                      "tasks": [{"name": task_spec.name, "args": dict(task_args)}],
                      "judge": {"name": judge_name, "args": dict(judge_args)},
                      "reference_scoring": reference_scoring},
              "tasks": {task.name: task.identity()}, "judge_identity": judge.identity(),
              "plugins": registry.versions(),
              "specs": origins([task_spec, judge_spec])}
    config = json.loads(json.dumps(config, default=str))  # as it reads back, for comparing
    previous = store.read_config()
    if previous is not None and previous.get("kind") != "score":
        raise UserError(f"{out} holds another kind of run (an eval or a probe, not a score); "
                        "score into a folder of its own (--out), so that run is not overwritten")
    if out.resolve() == folder.resolve():
        raise UserError(f"--out {out} is the folder being scored; score into a folder of its own")
    store.samples.repair()
    done = store.records()
    foreign = previous is None and not done and any(
        (store.root / name).exists() for name in (store.results_path.name, CSV_NAME))
    if previous is None and not done and not foreign and store.root.is_dir():
        # images laid out as a score keeps them (scored where they lie) are the score's own
        lying = folder.resolve() == store.image_dir(task.name, mode).resolve()
        held = sorted(p.name for p in store.root.iterdir()
                      if p.name != store.LOCK_NAME and not (lying and p.name == "images"))
        if held:  # the user's own files: nothing of a score to resume or set aside
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            raise UserError(f"{out} is not empty and holds no score ({shown}); score into a new "
                            "or empty folder (--out), so nothing of yours is mixed in")
    if foreign or (done and (previous is None or _scoring(previous) != _scoring(config))):
        # another judge, task file, label set, source or mode: a fresh log, the old one kept
        kept = _set_aside(store, source, foreign)
        what = (differences(_scoring(previous), _scoring(config)) if previous
                else "it has no config.json")
        print(f"{out}: the earlier scoring differs ({what}); it is kept whole in {kept.name}/",
              file=sys.stderr)
        done = {}
    if previous != config:
        store.write_config(config)

    # every sample is judged on every score, through the cache: an unchanged image costs
    # nothing, while earlier errors, images added since and replaced images get new verdicts
    bar = progress_bar(len(samples), f"score {task.name}", "sample", progress)
    for batch in chunks(list(zip(samples, found_at, strict=True)), batch_size):
        items, records = [], []
        for sample, found in batch:
            name = task.image_name(sample)
            target = store.image_path(task.name, mode, name)
            base = {"task": task.name, "mode": mode, "id": sample.id, "level": sample.level,
                    "group": sample.group, "prompt": sample.prompt, "expected": sample.answer,
                    "image": store.relative(target)}
            why = "" if found is None else _unreadable(found)
            if found is None or why:
                # an image gone from the source since an earlier score (or not an image): its
                # copy goes too, so the sheet and the report agree with the verdict (the copy,
                # never the source itself, which may lie where the copy would)
                if found is None or found.resolve() != target.resolve():
                    target.unlink(missing_ok=True)
                v = missing_image_verdict(target, why)
                records.append({**base, **v.fields()})
                continue
            if found.resolve() != target.resolve() and not (
                    target.is_file() and filecmp.cmp(found, target, shallow=False)):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(found, target)
            items.append((base, JudgeItem(task.name, task.family, sample, target)))
        verdicts = judge.judge([item for _, item in items]) if items else []
        for (base, _), v in zip(items, verdicts, strict=True):
            records.append({**base, **v.fields()})
        # the log stays append-only and gains a record only where a verdict changed
        store.samples.append([r for r in records if _changed(done.get((r["task"], mode, r["id"])), r)])
        bar.update(len(batch))
    bar.close()
    judge.close()
    results = compute_results(store, [task], [mode], reference_scoring)
    results["understanding_measured"] = False
    store.write_results(results)
    # the original scorer's sheet, for tools that read its columns
    mine = {sid: r for (t, m, sid), r in store.records().items() if t == task.name and m == mode}
    write_evaluation_csv(store.root / CSV_NAME, samples, mine, store.root, task.family, task.unit)
    if progress:
        print(f"scored {len(samples)} samples into {out}", file=sys.stderr)
    for line in problems(store, images_from=folder):
        print(line, file=sys.stderr)
    return results
