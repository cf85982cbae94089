"""Small helpers both trainers share (no torch: the CLI imports this module at start-up)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from unisandbox.errors import UserError
from unisandbox.protocols import resume_identities
from unisandbox.run.store import atomic_write_json, differences, read_object

from . import __version__


def stderr_log(enabled: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        if enabled:
            print(message, file=sys.stderr)

    return log


def check_run_folder(out_dir: Path, record: Mapping[str, Any], is_main: bool) -> bool:
    """Write ``trainer.json`` on the first run; refuse to resume a folder of another run.
    True when the folder holds this run already (a resume).

    ``record`` holds what must match on resume (trainer, arguments, data, base model).
    """
    path = out_dir / "trainer.json"
    wanted = as_json({**record, "plugin": f"unisandbox-stars {__version__}"})
    if path.is_file():
        existing = read_object(path)
        for key in record:
            old, new = _computed({key: existing.get(key)})[key], _computed({key: wanted.get(key)})[key]
            if key == "model":  # the same weights wherever they lie and however the path is spelt
                old, new = resume_identities(old, new)
            if old != new:
                what = differences(old, new, key)
                raise UserError(f"{out_dir} holds another training run ({what}); resume only with "
                                "the same model, data and arguments, or choose another --out")
        return True
    if is_main:
        atomic_write_json(path, wanted)
    return False


def _computed(value: Any) -> Any:
    """``value`` without the bookkeeping options of any ``options`` inside it (how often a run
    logs and saves may change on resume; nothing it computes may)."""
    from .options import BOOKKEEPING

    if not isinstance(value, dict):
        return value
    return {k: ({o: x for o, x in v.items() if o not in BOOKKEEPING}
                if k == "options" and isinstance(v, dict) else _computed(v))
            for k, v in value.items()}


def as_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as trainer.json holds it (JSON types, sorted keys), for comparisons."""
    return json.loads(json.dumps(record, sort_keys=True, default=str))


def json_arg(name: str, value: Any) -> dict[str, Any]:
    """A dict argument, given as a mapping (Python) or a JSON object text (``--train-arg``)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name} must be a JSON object, e.g. {{\"use_answer\": true}}; "
                             f"{exc.msg}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a JSON object, got {value!r}")
    return dict(value)


def name_list(name: str, value: Any) -> tuple[str, ...]:
    """A list argument: a list, or one comma-separated text ("math-1,math-2")."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise ValueError(f"{name} must be a list of names or a comma-separated text, got {value!r}")
    out = tuple(x.strip() for x in items if x.strip())
    if not out:
        raise ValueError(f"{name} is empty")
    return out
