"""The run configuration: CLI options and ``--config run.toml`` resolve to one RunConfig.

TOML layout (every key optional except model, tasks, judge and out, which the command line may give;
the judge only where images are drawn)::

    out = "runs/math"
    seed = 0
    modes = ["normal", "think"]   # or ["none"]: understanding (U) alone, no judge
    batch_size = 16
    understanding = true          # also measure U on the same items
    reference_scoring = false     # count judge errors as wrong, like the original scorer

    [model]
    name = "query-tiny"
    args = { path = "checkpoints/sandbox" }

    [[tasks]]
    name = "math-1"
    args = { n = 50, world = "glyph" }

    [judge]
    name = "glyph"
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import UserError
from ..records import MODES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@attrs.frozen
class Component:
    """A registered name plus the keyword arguments for its factory."""

    name: str
    args: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "args": dict(self.args)}


@attrs.frozen
class RunConfig:
    model: Component
    tasks: tuple[Component, ...]
    judge: Component | None  # None only when no image is drawn (modes empty: U alone)
    out: Path
    modes: tuple[str, ...] = MODES
    understanding: bool = True
    seed: int = 0
    batch_size: int = 16
    reference_scoring: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.to_json(),
            "tasks": [t.to_json() for t in self.tasks],
            "judge": self.judge.to_json() if self.judge else None,
            "modes": list(self.modes),
            "understanding": self.understanding,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "reference_scoring": self.reference_scoring,
        }


def parse_value(text: str) -> Any:
    """``k=v`` values: JSON scalars and lists when they parse (3, 0.5, true, [1,2]), else text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (int, float, bool, list)) or value is None else text


def parse_pairs(pairs: Iterable[str], option: str) -> dict[str, Any]:
    """Parse repeated ``--x-arg key=value`` options into a dict, with a clear error."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{option} expects key=value, got {pair!r}")
        key, value = key.strip(), parse_value(value)
        if key in out and (type(out[key]), out[key]) != (type(value), value):  # 1 is not true
            raise UserError(f"{option} {key} given twice ({json.dumps(out[key])} and {json.dumps(value)}); "
                            "give it once")
        out[key] = value
    return out


def task_args_by_name(task_args: Mapping[str, Any], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each task's ``--task-arg`` values: a plain ``key`` goes to every task, ``TASK:key``
    (``math-1:counts=1-3``) to that task alone, for an argument the others do not take."""
    out: dict[str, dict[str, Any]] = {name: {} for name in names}
    # the plain keys first: a task's own value wins, whichever order they were given in
    for key, value in sorted(task_args.items(), key=lambda item: ":" in item[0]):
        name, scoped, arg = key.partition(":") if ":" in key else ("", "", key)
        if scoped and name not in out:
            raise UserError(f"--task-arg {key}: no task {name!r} in this run (tasks: "
                            f"{', '.join(names) or 'none'})")
        for target in ([name] if scoped else names):
            out[target][arg] = value
    return out


def parse_modes(text: str | Iterable[str]) -> tuple[str, ...]:
    """``normal,think`` -> the modes; ``none`` -> no generation at all (U alone). An empty
    list is refused: a typo should not silently make a run that draws nothing."""
    modes = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    if modes == ["none"]:
        return ()
    if not modes:
        raise UserError(f"--mode: empty; choose from {', '.join(MODES)}, or none (understanding alone)")
    if "none" in modes:
        raise UserError("--mode: none (understanding alone) cannot be combined with other modes")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise UserError(f"--mode: unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    return tuple(dict.fromkeys(modes))


_KEYS = {"out", "seed", "modes", "batch_size", "understanding", "reference_scoring",
         "model", "tasks", "judge"}


def _line_of(text: str, field: str) -> int | None:
    """Best-effort line number of a dotted field such as ``tasks[1].name`` in TOML text."""
    match = re.fullmatch(r"(\w+)(?:\[(\d+)\])?(?:\.(\w+))?", field)
    if not match:
        return None
    key, index, sub = match.group(1), int(match.group(2) or 0), match.group(3)
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines)
               if re.match(rf"[ \t]*\[\[?[ \t]*{re.escape(key)}[ \t]*\]\]?", line)]
    if len(headers) > index:
        start = headers[index]
        if sub is None:
            return start + 1
        for i in range(start + 1, len(lines)):
            if re.match(r"[ \t]*\[", lines[i]):
                break
            if re.match(rf"[ \t]*{re.escape(sub)}[ \t]*=", lines[i]):
                return i + 1
        return start + 1
    for i, line in enumerate(lines):
        if re.match(rf"[ \t]*{re.escape(key)}[ \t]*=", line):
            return i + 1
    return None


def load_toml(path: Path) -> dict[str, Any]:
    """Read and shape-check a run TOML; errors name the file, line and field."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None

    def fail(field: str, message: str) -> UserError:
        line = _line_of(text, field)
        where = f"{path}:{line}" if line else str(path)
        return UserError(f"{where}: field {field!r}: {message}")

    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; expected one of {', '.join(sorted(_KEYS))}")
    for key, kind in (("seed", int), ("batch_size", int), ("out", str),
                      ("understanding", bool), ("reference_scoring", bool)):
        if (key in data and not isinstance(data[key], kind)) or (
            kind is int and isinstance(data.get(key), bool)
        ):
            raise fail(key, f"expected {kind.__name__}, got {data[key]!r}")
    if isinstance(data.get("out"), str) and not data["out"].strip():  # the current folder
        raise fail("out", "is empty; name the run folder")
    if "modes" in data:
        if not isinstance(data["modes"], list):
            raise fail("modes", "expected a list such as [\"normal\", \"think\"]")
        try:
            data["modes"] = parse_modes([str(m) for m in data["modes"]])
        except UserError as exc:
            raise fail("modes", str(exc).split(": ", 1)[1]) from None
    for key in ("model", "judge"):
        if key in data:
            data[key] = _component(data[key], key, fail)
    if "tasks" in data:
        if not isinstance(data["tasks"], list):
            raise fail("tasks", "expected [[tasks]] tables")
        data["tasks"] = [_component(t, f"tasks[{i}]", fail) for i, t in enumerate(data["tasks"])]
    return data


def _component(value: Any, field: str, fail: Any) -> Component:
    if isinstance(value, str):
        return Component(value)
    if not isinstance(value, dict):
        raise fail(field, "expected a table with name and args")
    extra = sorted(set(value) - {"name", "args"})
    if extra:
        raise fail(f"{field}.{extra[0]}", "unknown key; expected name and args")
    if not isinstance(value.get("name"), str) or not value["name"]:
        raise fail(f"{field}.name", "expected a non-empty string")
    args = value.get("args", {})
    if not isinstance(args, dict):
        raise fail(f"{field}.args", "expected a table of keyword arguments")
    return Component(value["name"], args)


def resolve(
    *,
    config_file: Path | None,
    model: str | None,
    model_args: Mapping[str, Any],
    tasks: Iterable[str],
    task_args: Mapping[str, Any],
    judge: str | None,
    judge_args: Mapping[str, Any],
    out: Path | None,
    modes: tuple[str, ...] | None,
    seed: int | None,
    batch_size: int | None,
    understanding: bool | None,
    reference_scoring: bool | None,
) -> RunConfig:
    """Merge a TOML file and CLI options (CLI wins) into a RunConfig.

    ``task_args`` apply to every task named on the command line and are merged into the
    args of tasks from the file; a key ``TASK:key`` (``math-1:counts=1-3``) applies to that
    task alone, for an argument the other tasks do not take.
    """
    base = load_toml(config_file) if config_file else {}
    task_list = [Component(t, {}) for t in tasks] or [
        Component(t.name, dict(t.args)) for t in base.get("tasks", [])
    ]
    per_task = task_args_by_name(task_args, [t.name for t in task_list])
    task_list = [Component(t.name, {**t.args, **per_task[t.name]}) for t in task_list]
    model_c = Component(model, model_args) if model else base.get("model")
    judge_c = Component(judge, judge_args) if judge else base.get("judge")
    if model_c and model_args and not model:
        model_c = Component(model_c.name, {**model_c.args, **model_args})
    if judge_c and judge_args and not judge:
        judge_c = Component(judge_c.name, {**judge_c.args, **judge_args})
    chosen_modes = modes if modes is not None else tuple(base.get("modes", MODES))
    if not chosen_modes:  # U alone: nothing to judge, so a judge named is not kept (nor its args)
        judge_c = None
    missing = [name for name, v in (("--model", model_c), ("--task", task_list),
                                     ("--judge", judge_c or not chosen_modes),
                                     ("--out", out or base.get("out"))) if not v]
    if missing:
        raise UserError(f"missing {', '.join(missing)} (give them as options or in --config)")
    chosen_understanding = understanding if understanding is not None else base.get("understanding", True)
    if not chosen_modes and not chosen_understanding:
        raise UserError("nothing to measure: --mode none with --no-understanding")
    chosen_batch = batch_size if batch_size is not None else base.get("batch_size", 16)
    if chosen_batch < 1:
        raise UserError(f"--batch-size must be at least 1, got {chosen_batch}")
    chosen_seed = seed if seed is not None else base.get("seed", 0)
    if not 0 <= chosen_seed < 2**63:  # a sample's seed is derived from it (run/seeds.py)
        raise UserError(f"--seed must be between 0 and 2**63 - 1, got {chosen_seed}")
    return RunConfig(
        model=model_c,
        tasks=tuple(task_list),
        judge=judge_c,
        out=Path(out or base["out"]),
        modes=chosen_modes,
        understanding=chosen_understanding,
        seed=chosen_seed,
        batch_size=chosen_batch,
        reference_scoring=reference_scoring if reference_scoring is not None
        else base.get("reference_scoring", False),
    )
