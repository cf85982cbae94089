"""Running a probe (an analysis task): build it and the model, check the folder, analyze.

``unisandbox probe`` calls :func:`run_probe`; so can anything that already holds a model in
memory (the demo), by passing ``model=``. Probes write their own files (see
``protocols/analysis.py``); this module adds ``config.json`` so a folder says what made it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError
from ..factories import build
from ..progress import bar as progress_bar
from ..protocols import AnalysisTask, Model
from ..protocols.analysis import RESULT_FILE, SECTION_HTML, SECTION_MD
from ..protocols.returns import PluginError
from ..records import MODES
from ..registry import Registry, get_registry
from ..specs import origins
from .config import Component
from .store import atomic_write_json, differences, read_json

CONFIG_FILE = "config.json"
_CHECKED = ("probe", "model", "modes")


def _bars(enabled: bool) -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """A progress callback with one tqdm bar per description, and a function closing them."""
    bars: dict[str, Any] = {}

    def update(description: str, done: int, total: int) -> None:
        if not enabled:
            return
        bar = bars.get(description)
        if bar is None:  # a probe's stages come one after another: the earlier bars are done
            close()
            bar = bars[description] = progress_bar(total, description, "sample")
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()  # closing twice is harmless

    return update, close


def run_probe(task: Component, out: Path, model: Component | None = None,
              modes: Sequence[str] = MODES, *, progress: bool = True,
              registry: Registry | None = None, model_object: Model | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the analysis task ``task`` on ``model`` (or ``model_object``) into ``out``.

    Returns the probe's summary. A folder that holds another finished probe's config is
    refused, a folder holding this same configuration is overwritten (probes are recomputed,
    not resumed); ``config.json`` is written when the probe has finished.
    """
    registry = registry or get_registry()
    log = log or (lambda message: print(message, file=sys.stderr))
    spec = registry.task(task.name)
    if not spec.analysis:
        raise UserError(f"task {task.name!r} is not a probe (an analysis task); evaluate it with "
                        "`unisandbox eval`. Probes: see `unisandbox tasks list`")
    if model is not None and not spec.requires:
        # a probe that reads earlier probe folders (probe-transfer) has no use for a model:
        # loading one would cost time and put it in config.json as if it had been read
        log(f"probe {task.name!r} reads no model; --model {model.name} ignored")
        model = None
    model_spec = registry.model(model.name) if model is not None else None
    if spec.requires and model_spec is None and model_object is None:
        raise UserError(f"probe {task.name!r} reads a model ({', '.join(sorted(spec.requires))}): "
                        "give --model")
    if model_spec is not None:
        missing = sorted(spec.requires - model_spec.capabilities)
        if missing:
            raise UserError(f"model {model_spec.name!r} lacks {', '.join(missing)} (needed by "
                            f"probe {task.name!r})")
    probe = build(spec, task.args)
    if not isinstance(probe, AnalysisTask):
        raise UserError(f"task {task.name!r} ({spec.distribution} {spec.version}) is registered "
                        f"as a probe but its factory returned {type(probe).__name__}, not an "
                        "AnalysisTask; report this to the plugin's authors")
    config = {
        "unisandbox": __version__,
        "probe": task.to_json(),
        "model": None if model is None else model.to_json(),
        "modes": list(modes),
        "probe_identity": probe.identity(),
        "plugins": registry.versions(),
        "specs": origins([spec, model_spec]),
    }
    _check_folder(out, config)
    if model_object is None and model_spec is not None:
        log(f"loading model {model_spec.name} ...")
        model_object = build(model_spec, model.args if model is not None else {})
    out.mkdir(parents=True, exist_ok=True)
    update, close = _bars(progress)
    try:
        summary = probe.analyze(model_object, tuple(modes), out, update)
    finally:
        close()
    who = f"{type(probe).__name__}.analyze() ({spec.distribution} {spec.version})"
    if not isinstance(summary, dict):
        raise PluginError(f"{who} returned a {type(summary).__name__}; expected a dict (its summary)")
    written = [name for name in (RESULT_FILE, SECTION_MD, SECTION_HTML) if (out / name).is_file()]
    if not written or written == [RESULT_FILE]:
        raise PluginError(f"{who} wrote no {SECTION_MD} or {SECTION_HTML} into {out}: a report "
                          "shows a probe by its section (PLUGINS.md, \"register_tasks\")")
    # written once the probe has finished: a probe that failed (or was killed) leaves no
    # config behind to refuse the corrected command as "a different probe"
    atomic_write_json(out / CONFIG_FILE, config)
    return summary


def _check_folder(out: Path, config: dict[str, Any]) -> None:
    path = out / CONFIG_FILE
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if not path.is_file():
        return
    try:
        existing = read_json(path)
    except UserError:  # damaged: not a probe's either way, and not overwritten
        existing = None
    if not isinstance(existing, dict) or "probe" not in existing:
        raise UserError(f"{out} holds a config.json that is not a probe's; choose another --out")
    for key in _CHECKED:
        if existing.get(key) != config[key]:
            raise UserError(f"{out} holds a different probe ({differences(existing.get(key), config[key], key)}); "
                            "choose another --out or delete the folder")
