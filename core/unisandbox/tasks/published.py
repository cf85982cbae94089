"""The published UniSandbox files: strict readers, byte-faithful writers, and a task over them.

Three benchmark schemas (see docs/tasks.md) plus the knowledge conversation format:

* math ``{"Question", "Answer", "id": "1"}`` - one image ``<id>.png``;
* mapping ``{"ID": "1", "Question_A" | "Question_B", "Answer"}`` - a pair ``<ID>_A.png`` /
  ``<ID>_B.png``, right only when both are;
* knowledge ``{"ID": 5, "Question", "Answer"}`` - one image ``<ID>.png``;
* conversations ``{"id", "conversations": [{"from": "human"|"gpt", "value"}, ...]}``.

Readers check every line and raise ``DataError(path, line, field, message)`` at the first
problem. Generated sets are written in the same schemas, with one extra key ``"unisandbox"``
holding what the schema cannot (the understanding question, structured target, reasoning
steps), which the original scripts ignore; ``extras=False`` writes the bare schema. A sample
read from a bare line gets its question, target and steps re-derived from the prompt text with
the same parsers the audit uses.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..answers import NUMBER_WORDS, singular
from ..errors import DataError, DataWarning, UserError
from ..factories import check_number
from ..paths import jsonl_files
from ..protocols import Task
from ..records import Conversation, Sample, Turn
from ..world import World, get_world
from . import arith
from .common import article
from .knowledge import ATTRIBUTES, describe_portrait, knowledge_reply_ok, portrait_mentions
from .mapping import (
    DESCRIPTOR,
    QUESTION,
    is_non_answer,
    key_class,
    mapping_reply_ok,
    object_words,
    parse_rules,
    resolve,
    same_object,
)

FAMILIES = ("math", "mapping", "knowledge")
EXTRA = "unisandbox"
_LEVEL = re.compile(r"(?:math|mapping)[_-]?(\d+)", re.I)


@attrs.frozen
class LoadedFile:
    """One loaded evaluation file (or a folder of knowledge files)."""

    path: Path
    family: str
    samples: tuple[Sample, ...]
    lines: Mapping[str, tuple[Path, int]]  # sample id -> (file, line number)
    warnings: tuple[str, ...] = ()


# --- low-level reading --------------------------------------------------------------------
def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) for every non-blank line; DataError on anything else."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(path, number, None, f"not valid UTF-8 (byte {exc.start})") from None
        try:
            record = json.loads(text, object_pairs_hook=_no_repeated_keys)
        except json.JSONDecodeError as exc:
            raise DataError(path, number, None, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        except _RepeatedKey as exc:
            raise DataError(path, number, exc.key, "given twice in one record (which is meant?)") from None
        except RecursionError:
            raise DataError(path, number, None, "JSON nested too deeply") from None
        if not isinstance(record, dict):
            raise DataError(path, number, None, f"expected a JSON object, got {type(record).__name__}")
        yield number, record


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON lets a key come twice and keeps the last: a second ``Answer`` would change the
    label silently."""
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _RepeatedKey(key)
        record[key] = value
    return record


def _text(path: Path, line: int, record: Mapping[str, Any], key: str) -> str:
    if key not in record:
        raise DataError(path, line, key, "missing")
    value = record[key]
    if not isinstance(value, str):
        raise DataError(path, line, key, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(path, line, key, "empty")
    return value


def _file_id(path: Path, line: int, record: Mapping[str, Any], key: str) -> str:
    """An id names an image file (``<id>.png``): printable, no surrounding spaces, short
    enough for a file name (a NUL or newline in one read as a missing image)."""
    value = _text(path, line, record, key)
    if value != value.strip() or not value.isprintable():
        raise DataError(path, line, key, f"{value!r} holds control characters or surrounding spaces")
    if len(value.encode()) > 200:
        raise DataError(path, line, key, f"{len(value.encode())} bytes long; an id names an image "
                        "file, at most 200 bytes")
    return value


def _known_keys(path: Path, line: int, record: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed) | {EXTRA}
    for key in record:
        if key not in allowed:
            raise DataError(path, line, key, f"unknown field; expected {', '.join(sorted(allowed - {EXTRA}))}")


def detect_family(path: Path, record: Mapping[str, Any], line: int | None = None) -> str:
    """The schema of a file, from its first record's keys (the file name only breaks ties)."""
    if "conversations" in record:
        return "conversations"
    if "Question_A" in record or "Question_B" in record:
        return "mapping"
    if "id" in record:
        return "math"
    if "ID" in record:
        return "knowledge"
    stem = path.stem.lower()
    for family in FAMILIES:
        if stem.startswith(family):
            return family
    raise DataError(path, line, None, "cannot tell the schema from the fields "
                    f"{', '.join(map(repr, record)) or 'none'}: expected those of a math (id), "
                    "mapping (ID, Question_A/Question_B) or knowledge (ID, Question) file; or "
                    "name the family (the task argument family=; `unisandbox data` commands take --family)")


def level_from_name(path: Path) -> int | None:
    match = _LEVEL.search(path.stem)
    return int(match.group(1)) if match else None


# --- extras (generated sets) --------------------------------------------------------------
def _extras(path: Path, line: int, record: Mapping[str, Any]) -> dict[str, Any] | None:
    if EXTRA not in record:
        return None
    extra = record[EXTRA]
    if not isinstance(extra, dict):
        raise DataError(path, line, EXTRA, "expected an object")
    types = {"question": str, "question_answer": str, "level": (int, type(None)),
             "target": dict, "meta": dict}
    for key in extra:
        if key not in types:
            raise DataError(path, line, f"{EXTRA}.{key}", f"unknown field; expected {', '.join(types)}")
    for key, kind in types.items():
        if key not in extra:
            raise DataError(path, line, f"{EXTRA}.{key}", "missing")
        if not isinstance(extra[key], kind) or isinstance(extra[key], bool):
            raise DataError(path, line, f"{EXTRA}.{key}", f"wrong type {type(extra[key]).__name__}")
    return extra


def _sample(sid: str, prompt: str, answer: str, group: str | None,
            extra: Mapping[str, Any] | None, derived: Mapping[str, Any]) -> Sample:
    fields = dict(extra) if extra is not None else dict(derived)
    return Sample(id=sid, prompt=prompt, answer=answer, group=group, **fields)


# --- math ---------------------------------------------------------------------------------
_LABEL = re.compile(r"^\s*(\d+|an?(?!\s+(?:few|couple|dozen|lot|pair|bunch|handful|number)\b)|"
                    + "|".join(NUMBER_WORDS) + r")\s+(.+?)\s*[.!]?\s*$", re.I)


def parse_count_label(label: str) -> tuple[int, str] | None:
    """'2 cups.' -> (2, 'cups'); 'Four cups.' and 'A cup!' too (a judge reads the words as the
    number); None when the label names no count."""
    match = _LABEL.match(label)
    if not match:
        return None
    number = match.group(1).lower()
    count = int(number) if number.isdigit() else 1 if number in ("a", "an") else NUMBER_WORDS.index(number)
    return count, match.group(2)


def draw_phrase(count: int, obj: str) -> str:
    if count == 1:
        head, _, last = obj.rpartition(" ")
        obj = (head + " " if head else "") + singular(last)
    return f"{count} {obj}"


def world_target(phrase: str, world: World | None, count: int | None = None) -> dict[str, Any]:
    """The structured answer for an object phrase: the world's own target when the world has
    that thing ('blue crosses' -> kind cross, colour blue), else the phrase's words as kind."""
    if world is not None:
        for thing in (*world.objects, *world.fruits, *world.flowers):
            if same_object(phrase, thing.name(2)) or same_object(phrase, thing.name(1)):
                return thing.target(count)
    kind = " ".join(object_words(phrase))
    if not kind:
        return {}
    return {"kind": kind} if count is None else {"kind": kind, "count": count}


def derive_math(prompt: str, answer: str, level: int | None, world: World | None = None) -> dict[str, Any]:
    """The U question, target and steps of a math prompt (re-derived from its text)."""
    read = arith.read_math_prompt(prompt)
    meta: dict[str, Any] = {}
    label = parse_count_label(answer)
    target: dict[str, Any] = {}
    if label:
        target = world_target(label[1], world, label[0])
    question = question_answer = ""
    value = read.value
    if read.node is None or value is None:
        meta["u_problem"] = read.problem or "the expression has no exact value"
    else:
        count = arith.count_of(value, read.rounding, "floor")
        inexact = value.denominator != 1
        question = arith.question_of(read.expression or "", inexact)
        question_answer = str(count)
        steps = arith.worked_steps(read.node, "floor" if inexact else None, count)
        if read.object:
            steps.append(f"So draw {draw_phrase(count, read.object)}.")
            meta["draw"] = draw_phrase(count, read.object)
        meta.update(steps=steps, expression=read.expression,
                    rounding=read.rounding or ("floor" if inexact else None))
        if level is None:
            level = min(3, max(1, sum(1 for _ in arith.E.operators(read.node))))
    return {"question": question, "question_answer": question_answer, "level": level,
            "target": target, "meta": meta}


def read_math(path: Path, level: int | None = None, world: World | None = None) -> LoadedFile:
    level = level if level is not None else level_from_name(path)
    samples, lines, seen = [], {}, {}
    for number, record in iter_records(path):
        _known_keys(path, number, record, ("Question", "Answer", "id"))
        sid = _file_id(path, number, record, "id")
        prompt = _text(path, number, record, "Question")
        answer = _text(path, number, record, "Answer")
        if sid in seen:
            raise DataError(path, number, "id", f"duplicate id {sid!r} (first on line {seen[sid]})")
        seen[sid] = number
        extra = _extras(path, number, record)
        derived = derive_math(prompt, answer, level, world) if extra is None else {}
        samples.append(_sample(sid, prompt, answer, None, extra, derived))
        lines[sid] = (path, number)
    return _done(path, "math", samples, lines, ())


# --- mapping ------------------------------------------------------------------------------
def derive_mapping(prompt: str, answer: str, level: int | None, world: World | None = None
                   ) -> dict[str, Any]:
    rules = parse_rules(prompt)
    meta: dict[str, Any] = {}
    question = question_answer = ""
    if level is None and rules.rules:
        level = {2: 1, 4: 2, 6: 3}.get(len(rules.rules))
    if rules.problems:
        meta["u_problem"] = "; ".join(rules.problems)
    else:
        resolved = resolve(rules.rules, rules.query or "")
        body = prompt[: prompt.rfind("Please")].strip() if "Please" in prompt else prompt
        desc = DESCRIPTOR[key_class(rules.query or "A")]
        if resolved.object is None:
            meta["u_problem"] = resolved.problem
        else:
            obj = " ".join(object_words(resolved.object))
            others = sorted({" ".join(object_words(r.dst)) for r in rules.rules
                             if not r.dst_is_key} - {obj})
            question, question_answer = f"{body} {QUESTION.format(d=desc, k=rules.query)}", obj
            draw = article(obj)
            meta.update(steps=[r.step() for r in resolved.chain] + [f"So draw {draw}."],
                        draw=draw, distractors=others)
    target = {} if is_non_answer(answer) else world_target(answer, world)
    return {"question": question, "question_answer": question_answer, "level": level,
            "target": target, "meta": meta}


def read_mapping(path: Path, level: int | None = None, world: World | None = None) -> LoadedFile:
    level = level if level is not None else level_from_name(path)
    sides: dict[str, dict[str, tuple[int, Sample]]] = {}
    found_warnings: list[str] = []
    for number, record in iter_records(path):
        _known_keys(path, number, record, ("ID", "Question_A", "Question_B", "Answer"))
        pid = _file_id(path, number, record, "ID")
        answer = _text(path, number, record, "Answer")
        has = [s for s in ("A", "B") if f"Question_{s}" in record]
        if not has:
            raise DataError(path, number, "Question_A", "missing (a mapping line needs Question_A or Question_B)")
        side = has[0]
        prompt = _text(path, number, record, f"Question_{side}")
        meta_extra: dict[str, Any] = {}
        if len(has) == 2:
            other = _text(path, number, record, "Question_B")
            found_warnings.append(f"{path}:{number}: ID {pid} carries both Question_A and "
                                  "Question_B; read as its A side")
            meta_extra["published_extra"] = {"Question_B": other}
        if pid in sides and side in sides[pid]:
            raise DataError(path, number, f"Question_{side}",
                            f"duplicate ID {pid!r} side {side} (first on line {sides[pid][side][0]})")
        extra = _extras(path, number, record)
        derived = derive_mapping(prompt, answer, level, world) if extra is None else {}
        if extra is None and "Please" not in prompt and not derived["question"]:
            found_warnings.append(f"{path}:{number}: ID {pid} side {side} asks for nothing "
                                  "(no 'Please generate ...'); it cannot be won")
        sample = _sample(f"{pid}_{side}", prompt, answer, pid, extra, derived)
        if meta_extra:
            sample = attrs.evolve(sample, meta={**sample.meta, **meta_extra})
        sides.setdefault(pid, {})[side] = (number, sample)
    samples, lines = [], {}
    for pid, got in sides.items():
        for side in ("A", "B"):
            if side not in got:
                other_line = next(iter(got.values()))[0]
                raise DataError(path, other_line, f"Question_{side}",
                                f"ID {pid!r} has no {side} side (half a pair)")
            number, sample = got[side]
            samples.append(sample)
            lines[sample.id] = (path, number)
    samples.sort(key=lambda s: lines[s.id][1])
    return _done(path, "mapping", samples, lines, tuple(found_warnings))


# --- knowledge ----------------------------------------------------------------------------
_FORWARD = re.compile(r"(portrait|favorite fruit|favorite flower) of character (\S+?) from", re.I)
_INVERSE = re.compile(r"From the characters (\S+) and (\S+?) from .*?the one whose favorite "
                      r"(fruit|flower) is (.+?)\.?$", re.I)


def parse_portrait(text: str, world: World) -> dict[str, str]:
    """Attributes a description states unambiguously ('kid' alone leaves gender open)."""
    found = portrait_mentions(text, world.portrait)
    return {a: next(iter(v)) for a, v in found.items() if len(v) == 1}


def _facts(records: Sequence[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """name -> {portrait/fruit/flower: answer} from forward (prompt, answer) pairs."""
    facts: dict[str, dict[str, str]] = {}
    for prompt, answer in records:
        match = _FORWARD.search(prompt)
        if match:
            kind = match.group(1).lower().replace("favorite ", "")
            facts.setdefault(match.group(2), {})[kind] = answer
    return facts


def _fact(name: str, kind: str, value: str) -> str:
    """The canonical fact sentence (as the knowledge generator and its corpus write it)."""
    if kind == "portrait":
        return f"{name} is {value}."
    return f"{name}'s favorite {kind} is {'the ' if kind == 'flower' else ''}{value}."


def derive_knowledge(prompt: str, answer: str, facts: Mapping[str, Mapping[str, str]],
                     world: World) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    question = question_answer = ""
    target: dict[str, Any] = {}
    label = answer.strip().rstrip(".")
    forward, inverse = _FORWARD.search(prompt), _INVERSE.search(prompt)
    steps: list[str] = []
    if inverse:
        a, b, kind, value = inverse.groups()
        kind = kind.lower()
        meta.update(kind=f"inverse-{kind}", characters=[a, b])
        owners = [n for n in (a, b) if same_object(facts.get(n, {}).get(kind, ""), value)]
        if len(owners) == 1 and all(kind in facts.get(n, {}) for n in (a, b)):
            question = f"Of {a} and {b}, whose favorite {kind} is {value}?"
            question_answer = owners[0]
            meta["distractors"] = [b if owners[0] == a else a]
            steps = [_fact(a, kind, facts[a][kind].strip().rstrip(".")),
                     _fact(b, kind, facts[b][kind].strip().rstrip(".")),
                     f"So the one is {owners[0]}."]
        else:
            meta["u_problem"] = f"the forward files do not say which of {a} and {b} likes {value}"
    elif forward:
        kind, name = forward.group(1).lower().replace("favorite ", ""), forward.group(2)
        meta.update(kind=kind, characters=[name])
        if kind == "portrait":
            question, question_answer = f"What does {name} look like?", label[:1].lower() + label[1:]
        else:
            question, question_answer = f"What is {name}'s favorite {kind}?", label
            pool = world.fruits if kind == "fruit" else world.flowers
            meta["distractors"] = [t.plural_kind for t in pool if not same_object(t.kind, label)]
            draw = label if kind == "fruit" else article(label)
            target = world_target(label, world)
            meta["draw"] = draw
            steps = [_fact(name, kind, label), f"So draw {draw}."]
    else:
        meta["u_problem"] = "not a forward or inverse knowledge prompt"
    if meta.get("kind") == "portrait" or inverse:
        portrait = parse_portrait(answer, world)
        desc = describe_portrait(portrait)
        target = {"portrait": portrait}
        meta.update(portrait=portrait, draw=f"a portrait of {desc}")
        who = question_answer if inverse else meta["characters"][0]
        if who:
            steps += [_fact(who, "portrait", desc), f"So draw a portrait of {desc}."]
    if steps:
        meta["steps"] = steps
    return {"question": question, "question_answer": question_answer, "level": None,
            "target": target, "meta": meta}


def read_knowledge(paths: Sequence[Path], world: World | None = None) -> LoadedFile:
    """One or more knowledge files (IDs unique across them); facts come from every forward
    prompt loaded plus forward files beside them, so inverse items get their U answer."""
    world = world or get_world("everyday")
    raw: list[tuple[Path, int, dict[str, Any]]] = []
    seen: dict[int, tuple[Path, int]] = {}
    for path in paths:
        for number, record in iter_records(path):
            _known_keys(path, number, record, ("ID", "Question", "Answer"))
            if "ID" not in record:
                raise DataError(path, number, "ID", "missing")
            pid = record["ID"]
            if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
                raise DataError(path, number, "ID", f"expected a non-negative integer, got {pid!r}")
            _text(path, number, record, "Question")
            _text(path, number, record, "Answer")
            if pid in seen:
                where = seen[pid]
                raise DataError(path, number, "ID", f"duplicate ID {pid} (first in {where[0].name} line {where[1]})")
            seen[pid] = (path, number)
            raw.append((path, number, record))
    pool = [(r["Question"], r["Answer"]) for _, _, r in raw]
    for sibling in _forward_siblings(paths):
        try:
            pool += [(r.get("Question", ""), r.get("Answer", "")) for _, r in iter_records(sibling)]
        except UserError:
            continue  # a broken neighbour is not this file's problem
    facts = _facts(pool)
    samples, lines = [], {}
    for path, number, record in raw:
        sid = str(record["ID"])
        extra = _extras(path, number, record)
        derived = derive_knowledge(record["Question"], record["Answer"], facts, world) if extra is None else {}
        samples.append(_sample(sid, record["Question"], record["Answer"], None, extra, derived))
        lines[sid] = (path, number)
    root = paths[0] if len(paths) == 1 else paths[0].parent
    return _done(root, "knowledge", samples, lines, ())


def _forward_siblings(paths: Sequence[Path]) -> list[Path]:
    """Forward files next to the ones read (``<Name>.jsonl``), for inverse U answers."""
    mine = {p.resolve() for p in paths}
    out = []
    for folder in {p.parent for p in paths}:
        for candidate in jsonl_files(folder):
            if candidate.resolve() not in mine and re.fullmatch(r"[A-Z][a-z]+", candidate.stem):
                out.append(candidate)
    return out


# --- entry points -------------------------------------------------------------------------
def _done(path: Path, family: str, samples: list[Sample], lines: dict[str, tuple[Path, int]],
          found: tuple[str, ...]) -> LoadedFile:
    if not samples:
        raise DataError(path, None, None, "no records")
    for message in found:
        warnings.warn(message, DataWarning, stacklevel=3)
    return LoadedFile(path, family, tuple(samples), lines, found)


def file_family(path: Path) -> str:
    for line, record in iter_records(path):
        return detect_family(path, record, line)
    raise DataError(path, None, None, "no records")


def read_published(path: str | Path, family: str | None = None, level: int | None = None,
                   world: str | World = "everyday") -> LoadedFile:
    """Read a math, mapping or knowledge file, or a folder of one family's files."""
    path = Path(path)
    if family is not None and family not in FAMILIES:
        raise UserError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if path.is_dir():
        files = jsonl_files(path)
        if not files:
            raise UserError(f"{path}: no .jsonl files in this folder")
        by_family: dict[str, list[Path]] = {}
        for f in files:
            by_family.setdefault(file_family(f), []).append(f)
        chosen = family or (next(iter(by_family)) if len(by_family) == 1 else None)
        if chosen == "conversations":
            raise UserError(f"{path} holds knowledge training corpora (conversations), not "
                            "evaluation sets; use them with a knowledge-injection trainer "
                            "(unisandbox train inject --train-arg data=FILE)")
        if chosen is None:
            raise UserError(f"{path} holds {', '.join(sorted(by_family))} files; name the family "
                            "(the task argument family=; `unisandbox data` commands take --family), "
                            "or give a single file")
        files = by_family.get(chosen, [])
        if not files:
            raise UserError(f"{path} holds no {chosen} files")
        if chosen != "knowledge" and len(files) > 1:
            raise UserError(f"{path} holds {len(files)} {chosen} files; their ids overlap, so "
                            "give one file")
        return _read(files, chosen, level, world)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    detected = family or file_family(path)
    if detected == "conversations":
        raise UserError(f"{path} is a knowledge training corpus (conversations), not an "
                        "evaluation set; use it with a knowledge-injection trainer "
                        "(unisandbox train inject --train-arg data=FILE)")
    return _read([path], detected, level, world)


def _read(files: list[Path], family: str, level: int | None, world: str | World) -> LoadedFile:
    if family == "math":
        return read_math(files[0], level, get_world(world))
    if family == "mapping":
        return read_mapping(files[0], level, get_world(world))
    return read_knowledge(files, get_world(world))


# --- writing ------------------------------------------------------------------------------
def _extra_of(sample: Sample) -> dict[str, Any]:
    meta = {k: v for k, v in sample.meta.items() if k != "published_extra"}
    return {"question": sample.question, "question_answer": sample.question_answer,
            "level": sample.level, "target": dict(sample.target), "meta": meta}


def published_records(samples: Sequence[Sample], family: str, extras: bool = True) -> list[dict[str, Any]]:
    """The published-schema records for ``samples`` (in order)."""
    out: list[dict[str, Any]] = []
    for s in samples:
        if family == "math":
            record: dict[str, Any] = {"Question": s.prompt, "Answer": s.answer, "id": s.id}
        elif family == "mapping":
            side = s.id.rsplit("_", 1)[-1]
            if s.group is None or s.id != f"{s.group}_{side}" or side not in ("A", "B"):
                raise UserError(f"mapping sample {s.id!r} is not named <ID>_A / <ID>_B")
            record = {"ID": s.group, f"Question_{side}": s.prompt}
            record.update(s.meta.get("published_extra", {}))
            record["Answer"] = s.answer
        elif family == "knowledge":
            if not s.id.isdigit():
                raise UserError(f"knowledge sample id {s.id!r} must be a number (the schema's int ID)")
            record = {"ID": int(s.id), "Question": s.prompt, "Answer": s.answer}
        else:
            raise UserError(f"cannot write family {family!r}; choose {', '.join(FAMILIES)}")
        if extras:
            record[EXTRA] = _extra_of(s)
        out.append(record)
    return out


def dumps(record: Mapping[str, Any]) -> str:
    """One line exactly as the published files write it (UTF-8, ', ' and ': ')."""
    return json.dumps(record, ensure_ascii=False)


def write_published(samples: Sequence[Sample], family: str, path: str | Path,
                    extras: bool = True) -> Path:
    path = Path(path)
    text = "".join(dumps(r) + "\n" for r in published_records(samples, family, extras))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# --- conversations (knowledge injection corpus) --------------------------------------------
_ROLES = {"human": "user", "gpt": "assistant"}


def read_conversations(path: str | Path) -> list[Conversation]:
    path = Path(path)
    out: list[Conversation] = []
    seen: dict[str, int] = {}
    for number, record in iter_records(path):
        _known_keys(path, number, record, ("id", "conversations"))
        if "id" not in record:
            raise DataError(path, number, "id", "missing")
        cid = record["id"]
        if isinstance(cid, bool) or not isinstance(cid, (int, str)) or cid == "":
            raise DataError(path, number, "id", f"expected an integer or a string, got {cid!r}")
        cid = str(cid)
        if cid in seen:
            raise DataError(path, number, "id", f"duplicate id {cid} (first on line {seen[cid]})")
        seen[cid] = number
        if "conversations" not in record:
            raise DataError(path, number, "conversations", "missing")
        turns = record["conversations"]
        if not isinstance(turns, list) or not turns:
            raise DataError(path, number, "conversations", "expected a non-empty list of turns")
        parsed = []
        for i, turn in enumerate(turns):
            field = f"conversations[{i}]"
            if not isinstance(turn, dict) or set(turn) != {"from", "value"}:
                raise DataError(path, number, field, 'expected {"from": ..., "value": ...}')
            if turn["from"] not in _ROLES:
                raise DataError(path, number, f"{field}.from", f"expected human or gpt, got {turn['from']!r}")
            if not isinstance(turn["value"], str) or not turn["value"].strip():
                raise DataError(path, number, f"{field}.value", "expected non-empty text")
            expected = "human" if i % 2 == 0 else "gpt"
            if turn["from"] != expected:
                # the loss is on the assistant's replies to the user: turns alternate
                raise DataError(path, number, f"{field}.from", f"expected {expected} (turns alternate "
                                f"human, gpt, ..., starting with human), got {turn['from']!r}")
            parsed.append(Turn(_ROLES[turn["from"]], turn["value"]))  # type: ignore[arg-type]
        if len(parsed) < 2:
            raise DataError(path, number, "conversations", "no gpt turn: nothing to learn from")
        out.append(Conversation(cid, tuple(parsed)))
    if not out:
        raise DataError(path, None, None, "no records")
    return out


def conversation_record(c: Conversation) -> dict[str, Any]:
    cid: int | str = int(c.id) if c.id.isdigit() and str(int(c.id)) == c.id else c.id
    back = {v: k for k, v in _ROLES.items()}
    return {"id": cid, "conversations": [{"from": back[t.role], "value": t.text} for t in c.turns]}


def write_conversations(conversations: Sequence[Conversation], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(dumps(conversation_record(c)) + "\n" for c in conversations),
                    encoding="utf-8")
    return path


# --- the task -----------------------------------------------------------------------------
class FileTask(Task):
    """A published (or generated-and-written) file as a task: ``--task unisandbox-file
    --task-arg path=FILE``. Scores exactly as published: the labels are taken as they are."""

    def __init__(self, path: str, family: str | None = None, name: str | None = None,
                 level: int | None = None, world: str = "everyday") -> None:
        if not str(path).strip():
            raise UserError("path is empty: give a .jsonl file or a folder of them (--task-arg path=FILE)")
        check_number("level", level, whole=True, low=1)
        self.path = Path(str(path)).expanduser()
        self.world = get_world(world)
        self.loaded = read_published(self.path, family, level, self.world)
        self.family = self.loaded.family
        self.unit = "pair" if self.family == "mapping" else "item"
        default = self.path.stem if self.path.is_file() else f"{self.path.name}-{self.family}"
        self.name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", default)

    def samples(self) -> Sequence[Sample]:
        return self.loaded.samples

    def image_name(self, sample: Sample) -> str:
        return f"{sample.id}.png"

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "path": str(self.path.resolve())}

    def check_understanding(self, sample: Sample, reply: str) -> bool:
        if not sample.question_answer:
            return False
        if self.family == "math":
            return arith.number_matches(reply, sample.question_answer)
        if self.family == "mapping":
            return mapping_reply_ok(sample, reply)
        return knowledge_reply_ok(sample, reply, get_world(sample.meta.get("world", self.world.name)))


__all__ = ["ATTRIBUTES", "DataWarning", "FileTask", "LoadedFile", "read_conversations",
           "read_published", "write_conversations", "write_published"]
