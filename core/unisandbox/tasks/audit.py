"""The label audit: recompute every label of a math, mapping or knowledge file.

Each scoring unit (an item; a pair for mapping) is ``ok`` or has findings:

* ``wrong`` - the label contradicts the recomputed answer: a right image scores NO;
* ``unwinnable`` - no image can be right (the label says "undefined", a rule chain breaks,
  the prompt asks for nothing or names no object, the answer is not a positive count);
* ``unverified`` - the prompt could not be read, so the label could not be checked.

The accuracy ceiling the labels impose is the share of units with neither wrong nor unwinnable
findings (unverified units counted as winnable); ``strict_ceiling`` also counts them as lost.
Math needs an explicit rounding policy for non-integer results whose prompt does not say how to
round (``floor``, ``round`` or ``exact`` - exact makes them unwinnable).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..answers import words
from ..errors import UserError
from ..paths import jsonl_files
from ..records import Conversation, Sample
from ..world import World, get_world
from . import arith
from .common import fmt
from .expr import ROUNDING
from .knowledge import ATTRIBUTES, describe_portrait, portrait_mentions
from .mapping import is_non_answer, object_words, parse_rules, resolve, same_object
from .published import (
    LoadedFile,
    draw_phrase,
    file_family,
    parse_count_label,
    parse_portrait,
    read_conversations,
    read_published,
)

SEVERITY = ("unwinnable", "wrong", "unverified")
GENERIC_OBJECTS = frozenset({"item", "object", "thing"})


@attrs.frozen
class Finding:
    unit: str  # item id, or pair ID for mapping
    sample: str  # the sample id the finding is about
    line: int
    category: str  # wrong | unwinnable | unverified
    label: str
    expected: str  # what the label should say ("" when nothing can be right or unknown)
    detail: str
    file: str = ""  # the file the line is in, when a folder of files is audited together

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @property
    def where(self) -> str:
        return f"{Path(self.file).name}:{self.line}" if self.file else str(self.line)


@attrs.frozen
class FileAudit:
    path: str
    family: str
    level: int | None
    units: int
    findings: tuple[Finding, ...]
    rounding: str | None = None
    facts: str | None = None  # where knowledge facts came from
    notes: tuple[str, ...] = ()

    def units_with(self, *categories: str) -> set[str]:
        return {f.unit for f in self.findings if f.category in categories}

    @property
    def ceiling(self) -> float:
        return 1 - len(self.units_with("wrong", "unwinnable")) / self.units

    @property
    def strict_ceiling(self) -> float:
        return 1 - len(self.units_with(*SEVERITY)) / self.units

    def counts(self) -> dict[str, int]:
        """Units per worst category (a unit counts once, under its worst finding)."""
        worst: dict[str, str] = {}
        for f in self.findings:
            if f.unit not in worst or SEVERITY.index(f.category) < SEVERITY.index(worst[f.unit]):
                worst[f.unit] = f.category
        got = Counter(worst.values())
        return {c: got.get(c, 0) for c in SEVERITY}

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "family": self.family, "level": self.level,
                "units": self.units, "rounding": self.rounding, "facts": self.facts,
                "ceiling": self.ceiling, "strict_ceiling": self.strict_ceiling,
                "counts": self.counts(), "notes": list(self.notes),
                "findings": [f.to_json() for f in self.findings]}


# --- math ---------------------------------------------------------------------------------
def audit_math_sample(s: Sample, line: int, rounding: str) -> list[Finding]:
    def found(category: str, expected: str, detail: str) -> list[Finding]:
        return [Finding(s.id, s.id, line, category, s.answer, expected, detail)]

    read = arith.read_math_prompt(s.prompt)
    label = parse_count_label(s.answer)
    if read.node is None:
        return found("unverified", "", read.problem or "unreadable")
    value = read.value
    if value is None:
        return found("unwinnable", "", f"{read.expression} has no exact value")
    count = arith.count_of(value, read.rounding, rounding)
    shown = f"{read.expression} = {fmt(value)}"
    if count is None:
        return found("unwinnable", "", f"{shown} is not a whole number and the prompt does not "
                                       "say how to round (policy exact)")
    if read.rounding is None and value.denominator != 1:
        shown += f", {rounding} -> {count}"
    obj = read.object
    if label is None:
        return found("unwinnable", draw_phrase(count, obj) if obj else str(count), "the label names no count")
    label_count, label_obj = label
    out: list[Finding] = []
    if obj is None and not set(object_words(label_obj)) <= GENERIC_OBJECTS:
        out += found("unwinnable", "", f"the prompt names no object but the label expects "
                                       f"{label_obj!r}")
    elif obj is not None and not same_object(obj, label_obj):
        out += found("wrong", draw_phrase(count, obj), f"the prompt asks for {obj!r}, the label says "
                                                f"{label_obj!r}")
    if count <= 0:
        if label_count != count:
            out += found("wrong", str(count), f"{shown}: nothing (or less) to draw, labelled {label_count}")
        else:
            out += found("unwinnable", "", f"{shown}: nothing to draw")
    elif label_count != count:
        out += found("wrong", draw_phrase(count, obj or label_obj), f"{shown}, labelled {label_count}")
    return out


# --- mapping ------------------------------------------------------------------------------
def audit_mapping_sample(s: Sample, line: int) -> list[Finding]:
    unit = s.group or s.id

    def found(category: str, expected: str, detail: str) -> list[Finding]:
        return [Finding(unit, s.id, line, category, s.answer, expected, detail)]

    parsed = parse_rules(s.prompt)
    if parsed.query is None:
        extra = " (the line also carries Question_B)" if "published_extra" in s.meta else ""
        return found("unwinnable", "", "the prompt asks for no symbol" + extra)
    result = resolve(parsed.rules, parsed.query)
    if is_non_answer(s.answer):
        detail = f"the label says {s.answer!r}" + (f"; {result.problem}" if result.problem else "")
        return found("unwinnable", result.object or "", detail)
    if result.object is None:
        if parsed.problems:
            return found("unverified", "", "; ".join(parsed.problems))
        return found("unwinnable", "", f"{result.problem}; labelled {s.answer!r}")
    if not same_object(result.object, s.answer):
        chain = " -> ".join([f"'{r.src}'" for r in result.chain] + [result.object])
        return found("wrong", " ".join(object_words(result.object)), f"{chain}, labelled {s.answer!r}")
    if parsed.problems:
        return found("unverified", "", "; ".join(parsed.problems))
    return []


# --- knowledge ----------------------------------------------------------------------------
_NAME_RE = re.compile(r"\b[A-Z][a-z]{3,}\b")


def facts_from_corpus(conversations: Iterable[Conversation], names: Iterable[str],
                      world: World) -> dict[str, dict[str, Any]]:
    """name -> attributes, by majority over the corpus answers about that character."""
    names = set(names)
    votes: dict[str, dict[str, Counter[str]]] = {}
    for c in conversations:
        asked = [n for n in _NAME_RE.findall(" ".join(t.text for t in c.turns if t.role == "user"))
                 if n in names]
        if len(set(asked)) != 1:
            continue
        name = asked[0]
        box = votes.setdefault(name, {k: Counter() for k in (*ATTRIBUTES, "fruit", "flower")})
        for t in c.turns:
            if t.role != "assistant":
                continue
            for attribute, values in portrait_mentions(t.text, world.portrait).items():
                if len(values) == 1:
                    box[attribute].update(values)
            got = words(t.text)
            for key, pool in (("fruit", world.fruits), ("flower", world.flowers)):
                for thing in pool:
                    if thing.kind in got:
                        box[key][thing.kind] += 1
    return {n: {k: c.most_common(1)[0][0] for k, c in box.items() if c} for n, box in votes.items()}


def _find_facts(path: Path) -> Path | None:
    for candidate in (path / "knowledge_train", path.parent / "knowledge_train",
                      path.parent.parent / "knowledge_train"):
        if candidate.is_dir():
            return candidate
    return None


def audit_knowledge(loaded: LoadedFile, facts_path: Path | None, world: World) -> FileAudit:
    samples = loaded.samples
    names = {n for s in samples for n in s.meta.get("characters", ())}
    facts: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    if facts_path is not None:
        files = jsonl_files(facts_path) if facts_path.is_dir() else [facts_path]
        conversations = [c for f in files for c in read_conversations(f)]
        facts = facts_from_corpus(conversations, names, world)
        notes.append(f"facts from {facts_path} ({len(conversations)} conversations, "
                     f"{len(facts)} characters)")
    forward = {(s.meta["characters"][0], s.meta["kind"]): s for s in samples
               if s.meta.get("kind") in ("portrait", "fruit", "flower")}
    findings: list[Finding] = []
    for s in samples:
        path, line = loaded.lines[s.id]
        kind = s.meta.get("kind", "")

        def found(category: str, expected: str, detail: str, s: Sample = s, line: int = line,
                  path: Path = path) -> None:
            findings.append(Finding(s.id, s.id, line, category, s.answer, expected, detail,
                                    str(path) if path != loaded.path else ""))

        if not kind:
            found("unverified", "", s.meta.get("u_problem", "not a knowledge prompt"))
            continue
        if kind.startswith("inverse"):
            a, b = s.meta["characters"]
            attribute = kind.split("-")[1]
            value = s.prompt.rsplit(" is ", 1)[-1].rstrip(".")

            def likes(n: str, attribute: str = attribute, value: str = value) -> bool | None:
                if n in facts and attribute in facts[n]:
                    return same_object(facts[n][attribute], value)
                fwd = forward.get((n, attribute))
                return None if fwd is None else same_object(fwd.answer, value)

            owners = [n for n in (a, b) if likes(n)]
            if len(owners) != 1:
                known = [likes(n) for n in (a, b)]
                if None in known:
                    found("unverified", "", f"no facts on who likes {value}")
                else:
                    found("unwinnable", "", f"{len(owners)} of {a} and {b} like {value}")
                continue
            expected_portrait = _portrait_of(owners[0], facts, forward, world)
            source = "the training data" if owners[0] in facts else "the forward prompt"
        elif kind == "portrait":
            name = s.meta["characters"][0]
            if name not in facts:
                continue
            expected_portrait, source = facts[name], "the training data"
        else:
            name = s.meta["characters"][0]
            if name in facts and kind in facts[name] and not same_object(facts[name][kind], s.answer):
                found("wrong", facts[name][kind], f"the training data says {facts[name][kind]!r}")
            continue
        got = parse_portrait(s.answer, world)
        clash = [f"{a}: label {got[a]!r}, {source} {expected_portrait[a]!r}"
                 for a in ATTRIBUTES if a in got and expected_portrait.get(a) and got[a] != expected_portrait[a]]
        if clash:
            category = "wrong" if source == "the training data" else "unverified"
            found(category, describe_portrait(expected_portrait), "; ".join(clash))
    if facts_path is None:
        notes.append("no knowledge_train facts given (--facts); portraits checked only against "
                     "the forward prompts")
    return FileAudit(str(loaded.path), "knowledge", None, len(samples), tuple(findings),
                     facts=str(facts_path) if facts_path else None, notes=tuple(notes))


def _portrait_of(name: str, facts: Mapping[str, Mapping[str, Any]],
                 forward: Mapping[tuple[str, str], Sample], world: World) -> dict[str, str]:
    if name in facts:
        return {a: facts[name][a] for a in ATTRIBUTES if a in facts[name]}
    fwd = forward.get((name, "portrait"))
    return parse_portrait(fwd.answer, world) if fwd else {}


# --- entry points -------------------------------------------------------------------------
def audit_loaded(loaded: LoadedFile, rounding: str = "floor", facts: Path | None = None,
                 world: World | None = None) -> FileAudit:
    if rounding not in ROUNDING:
        raise UserError(f"rounding must be one of {', '.join(ROUNDING)}, got {rounding!r}")
    world = world or get_world("everyday")
    if loaded.family == "knowledge":
        return audit_knowledge(loaded, facts if facts is not None else _find_facts(loaded.path), world)
    findings: list[Finding] = []
    for s in loaded.samples:
        line = loaded.lines[s.id][1]
        if loaded.family == "math":
            findings += audit_math_sample(s, line, rounding)
        else:
            findings += audit_mapping_sample(s, line)
    units = len({(s.group or s.id) if loaded.family == "mapping" else s.id for s in loaded.samples})
    levels = {s.level for s in loaded.samples}
    return FileAudit(str(loaded.path), loaded.family, levels.pop() if len(levels) == 1 else None,
                     units, tuple(findings), rounding=rounding if loaded.family == "math" else None)


def expand(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """Files (and folders) -> (path, family) to audit; a folder's knowledge files go together."""
    out: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            families = {}
            for f in jsonl_files(p):
                families.setdefault(file_family(f), []).append(f)
            for family, files in families.items():
                if family == "knowledge":
                    out.append((p, "knowledge"))
                elif family in ("math", "mapping"):
                    out += [(f, family) for f in files]
        elif p.is_file():
            out.append((p, file_family(p)))
        else:
            raise UserError(f"{p}: no such file or folder")
    return out


def audit_paths(paths: Sequence[str | Path], rounding: str = "floor", facts: Path | None = None,
                world: str = "everyday") -> list[FileAudit]:
    w = get_world(world)
    results = []
    for path, family in expand(paths):
        if family == "conversations":
            continue
        results.append(audit_loaded(read_published(path, family, world=w), rounding, facts, w))
    if not results:
        raise UserError("nothing to audit: no math, mapping or knowledge files given")
    return results
