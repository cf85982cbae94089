"""Judge prompt templates, one per task family, with a version and a content hash.

A template holds the two prompts of the VLM protocol (stage 1 describes the image, stage 2
compares the description with the expected answer in text) and the rules for reading the
stage-1 reply. The built-in ones live in ``templates/<family>.toml``. A task that brings a
family of its own sets ``Task.judge_templates = {family: Template | path to a TOML file}``;
the engine hands the run's tasks to judge factories that accept ``tasks`` and
:func:`resolve_templates` lays the tasks' templates over the built-ins. The hash of every
template a judge uses goes into its identity, so editing a prompt invalidates cached verdicts.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ..errors import DataError, UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILTIN_FAMILIES: tuple[str, ...] = ("math", "mapping", "knowledge")
PLACEHOLDERS: tuple[str, ...] = ("{description}", "{expected}")
_FIELDS = {"family", "version", "label", "short_circuit", "describe", "compare"}
_MARKUP = " \t*`\"'_[]."


@attrs.frozen
class Template:
    """The two prompts of one family and how to read the stage-1 reply.

    ``label``: stage 1 answers after ``<label>:``; the rest of that line is the description
    (empty label: the first non-empty line, as it is). ``short_circuit``: descriptions that
    score ``no`` without stage 2 (``Error``, ``Reject``), compared case-insensitively.
    ``compare`` must contain ``{description}`` and ``{expected}``.
    """

    family: str
    version: str
    describe: str = attrs.field(converter=str.strip)
    compare: str = attrs.field(converter=str.strip)
    label: str = ""
    short_circuit: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def __attrs_post_init__(self) -> None:
        missing = [p for p in PLACEHOLDERS if p not in self.compare]
        if missing:
            raise ValueError(f"template {self.family!r}: compare prompt lacks {', '.join(missing)}")
        if not self.describe:
            raise ValueError(f"template {self.family!r}: describe prompt is empty")

    @property
    def sha256(self) -> str:
        """Hash of everything that changes a verdict (prompts and reading rules)."""
        blob = json.dumps(attrs.asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def identity(self) -> dict[str, str]:
        return {"version": self.version, "sha256": self.sha256}

    def compare_prompt(self, description: str, expected: str) -> str:
        # plain replacement, not str.format: prompts may contain other braces
        return self.compare.replace("{description}", description).replace("{expected}", expected)

    def read_description(self, reply: str) -> str:
        """The description in a stage-1 reply: the text after the label, else the first line."""
        text = reply.strip()
        if self.label:
            match = re.search(rf"{re.escape(self.label)}\s*\**\s*:", text, re.IGNORECASE)
            if match:
                text = text[match.end():]
        line = next((ln for ln in text.splitlines() if ln.strip(_MARKUP)), "")
        return line.strip(_MARKUP + ",;")

    def is_short_circuit(self, description: str) -> bool:
        return description.strip(_MARKUP).lower() in {w.lower() for w in self.short_circuit}


def load_template(path: str | Path) -> Template:
    """Read a template TOML file; errors name the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read judge template ({exc.strerror})") from None
    return _parse(text, path)


def _parse(text: str, where: str | Path) -> Template:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(where, getattr(exc, "lineno", None), None, f"invalid TOML: {exc}") from None

    def line_of(key: str) -> int | None:
        match = re.search(rf"^\s*{re.escape(key)}\s*=", text, re.M)
        return text.count("\n", 0, match.start()) + 1 if match else None

    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise DataError(where, line_of(unknown[0]), unknown[0],
                        f"unknown key; expected {', '.join(sorted(_FIELDS))}")
    for key in ("family", "version", "describe", "compare"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise DataError(where, line_of(key), key, "expected a non-empty string")
    if not isinstance(data.get("label", ""), str):
        raise DataError(where, line_of("label"), "label", "expected a string")
    words = data.get("short_circuit", [])
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DataError(where, line_of("short_circuit"), "short_circuit", "expected a list of strings")
    try:
        return Template(**data)
    except ValueError as exc:
        raise DataError(where, line_of("compare"), "compare", str(exc)) from None


@cache
def builtin_templates() -> dict[str, Template]:
    """family -> the template shipped in ``unisandbox/judges/templates/``."""
    folder = resources.files("unisandbox.judges") / "templates"
    out = {}
    for family in BUILTIN_FAMILIES:
        template = _parse((folder / f"{family}.toml").read_text(encoding="utf-8"), f"{family}.toml")
        out[template.family] = template
    return out


def _as_template(value: Any, owner: str) -> Template:
    if isinstance(value, Template):
        return value
    if isinstance(value, (str, Path)):
        return load_template(value)
    raise UserError(f"{owner}: judge_templates values must be Template objects or paths to "
                    f"template TOML files, got {type(value).__name__}")


def resolve_templates(tasks: Iterable[Any] = ()) -> dict[str, Template]:
    """The templates a judge uses for these tasks: built-ins, then each task's own.

    With tasks, only the families the tasks judge under are returned, so a judge's identity
    names exactly the prompts it will send. Two tasks bringing different templates for one
    family is an error (a family maps to one protocol within a run).
    """
    tasks = list(tasks)
    for task in tasks:
        if not isinstance(getattr(task, "family", None), str):
            raise TypeError(f"tasks must be Task objects, got {type(task).__name__}")
    table = dict(builtin_templates())
    brought: dict[str, tuple[str, Template]] = {}
    for task in tasks:
        name = getattr(task, "name", type(task).__name__)
        own: Mapping[str, Any] = getattr(task, "judge_templates", {}) or {}
        for family, value in own.items():
            template = _as_template(value, f"task {name!r}")
            if template.family != family:
                raise UserError(f"task {name!r}: judge_templates[{family!r}] is a template for "
                                f"family {template.family!r}")
            if family in brought and brought[family][1] != template:
                raise UserError(f"tasks {brought[family][0]!r} and {name!r} bring different "
                                f"judge templates for family {family!r}; run them separately")
            brought[family] = (name, template)
            table[family] = template
    if not tasks:
        return table
    used = {getattr(t, "family", "") for t in tasks}
    return {f: table[f] for f in sorted(used) if f in table}


def missing_families(tasks: Iterable[Any], templates: Mapping[str, Template]) -> list[str]:
    """``task (family)`` for every task whose family has no template."""
    return [f"{t.name} ({t.family})" for t in tasks if t.family not in templates]


def templates_identity(templates: Mapping[str, Template]) -> dict[str, dict[str, str]]:
    return {family: templates[family].identity() for family in sorted(templates)}
