"""Published UniSandbox files: every one loads, round trips losslessly, and malformed input
gives a DataError naming file, line and field (1,000 fuzzed lines, no tracebacks)."""

from __future__ import annotations

import json
import random
import shutil
import warnings
from pathlib import Path

import pytest
from unisandbox.cli.main import main
from unisandbox.errors import DataError, UserError
from unisandbox.factories import build
from unisandbox.registry import get_registry
from unisandbox.tasks.arith import MathTask
from unisandbox.tasks.knowledge import KnowledgeTask
from unisandbox.tasks.mapping import MappingTask
from unisandbox.tasks.published import (
    DataWarning,
    FileTask,
    read_conversations,
    read_published,
    write_conversations,
    write_published,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "unisandbox-official"
BENCH = REFERENCE / "benchmark"
needs_reference = pytest.mark.skipif(not BENCH.is_dir(), reason="reference files not present")


def _quiet_read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_published(path, **kw)


# --- the published files ---------------------------------------------------------------------
@needs_reference
@pytest.mark.parametrize("name", ["math_1", "math_2", "math_3", "mapping1", "mapping2", "mapping3"])
def test_published_benchmark_files_load_and_round_trip(name, tmp_path):
    path = BENCH / f"{name}.jsonl"
    loaded = _quiet_read(path)
    assert loaded.family == ("math" if name.startswith("math") else "mapping")
    assert len(loaded.samples) == (100 if loaded.family == "math" else 200)
    assert {s.level for s in loaded.samples} == {int(name[-1])}
    # read -> write -> read: the same bytes and the same samples
    out = tmp_path / path.name
    write_published(loaded.samples, loaded.family, out, extras=False)
    assert out.read_bytes() == path.read_bytes()
    assert _quiet_read(out).samples == loaded.samples
    # with extras: a different file, the same samples
    rich = tmp_path / "rich" / path.name
    write_published(loaded.samples, loaded.family, rich)
    assert _quiet_read(rich).samples == loaded.samples


@needs_reference
def test_published_knowledge_files_load_and_round_trip(tmp_path):
    loaded = read_published(BENCH, family="knowledge")
    assert len(loaded.samples) == 50
    assert sorted(int(s.id) for s in loaded.samples) == list(range(1, 51))
    by_id = {s.id: s for s in loaded.samples}
    assert by_id["15"].question == "What is Aurelius's favorite fruit?"
    assert by_id["15"].question_answer == "grapes"
    assert by_id["39"].question == "Of Aurelius and Nyxella, whose favorite fruit is grapes?"
    assert by_id["39"].question_answer == "Aurelius"
    assert list(by_id["39"].meta["distractors"]) == ["Nyxella"]
    assert by_id["5"].target == {"portrait": {"ethnicity": "African/Indigenous", "hair": "black",
                                              "age": "young", "gender": "female"}}
    singles = {f.name: read_published(f) for f in sorted(BENCH.glob("[A-Z]*.jsonl"))}
    for name, single in singles.items():  # each file alone: inverse answers from neighbours
        write_published(single.samples, "knowledge", tmp_path / name, extras=False)
    for name, single in singles.items():
        # identical bytes, except that we always end the last line (some originals do not)
        assert (tmp_path / name).read_bytes() == (BENCH / name).read_bytes().rstrip(b"\n") + b"\n"
        assert read_published(tmp_path / name).samples == single.samples
    copy = tmp_path / "copy"
    shutil.copytree(BENCH, copy)
    assert read_published(copy, family="knowledge").samples == loaded.samples


@needs_reference
def test_published_conversations_load_and_round_trip(tmp_path):
    for f in sorted((REFERENCE / "knowledge_train").glob("*.jsonl")):
        convs = read_conversations(f)
        assert len(convs) in (40, 80)
        assert all(c.turns[0].role == "user" and c.turns[-1].role == "assistant" for c in convs)
        out = write_conversations(convs, tmp_path / f.name)
        assert out.read_bytes() == f.read_bytes()
        assert read_conversations(out) == convs


@needs_reference
def test_malformed_mapping2_id36_loads_with_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = read_published(BENCH / "mapping2.jsonl")
    messages = [str(w.message) for w in caught if w.category is DataWarning]
    assert any("mapping2.jsonl:71: ID 36 carries both Question_A and Question_B" in m for m in messages)
    assert len(messages) == 3  # the double line, and both sides asking for nothing
    a = next(s for s in loaded.samples if s.id == "36_A")
    assert a.question == "" and "u_problem" in a.meta
    assert a.meta["published_extra"] == {"Question_B": "Rule 4: Letter W bonds with 5."}


@needs_reference
def test_published_files_as_tasks():
    spec = get_registry().task("unisandbox-file")
    task = build(spec, {"path": str(BENCH / "mapping1.jsonl")})
    assert (task.name, task.family, task.unit) == ("mapping1", "mapping", "pair")
    assert task.image_name(task.samples()[0]) == "1_A.png"
    know = build(spec, {"path": str(BENCH), "family": "knowledge"})
    assert know.family == "knowledge" and len(know.samples()) == 50
    with pytest.raises(UserError, match=r"name the family \(the task argument family=; `unisandbox data` commands take --family\)"):
        build(spec, {"path": str(BENCH)})
    with pytest.raises(UserError, match="training corpus"):
        build(spec, {"path": str(REFERENCE / "knowledge_train" / "Aurelius.jsonl")})
    math = build(spec, {"path": str(BENCH / "math_2.jsonl")})
    nine = next(s for s in math.samples() if s.id == "9")
    assert (nine.question, nine.question_answer) == ("What is 10 % 3 + 1?", "2")
    assert math.check_understanding(nine, "10 % 3 = 1, 1 + 1 = 2") and not math.check_understanding(nine, "4")


# --- generated sets ----------------------------------------------------------------------------
GENERATED = [("math", lambda: MathTask(3, n=60, world="glyph", seed=3)),
             ("math", lambda: MathTask(1, n=60, seed=3)),
             ("mapping", lambda: MappingTask(2, n=30, seed=3)),
             ("mapping", lambda: MappingTask(3, n=30, world="glyph", seed=3)),
             ("knowledge", lambda: KnowledgeTask("forward", n_characters=6, seed=3))]


@pytest.mark.parametrize(("family", "make"), GENERATED)
def test_generated_sets_round_trip(family, make, tmp_path):
    samples = list(make().samples())
    rich = write_published(samples, family, tmp_path / "rich.jsonl")
    assert list(read_published(rich).samples) == samples
    # bare schema: question, answer, target and steps are re-derived from the prompt text
    plain = write_published(samples, family, tmp_path / "plain" / "set.jsonl", extras=False)
    first = json.loads(plain.read_text().splitlines()[0])
    assert "unisandbox" not in first
    world = samples[0].meta["world"]
    for got, want in zip(read_published(plain, world=world).samples, samples, strict=True):
        assert (got.id, got.prompt, got.answer, got.group) == (want.id, want.prompt, want.answer, want.group)
        assert (got.question, got.question_answer) == (want.question, want.question_answer)
        assert got.level == want.level
        assert list(got.meta["steps"]) == list(want.meta["steps"])
        assert got.target == want.target


def test_generated_knowledge_folder_derives_inverse_answers(tmp_path):
    fwd = KnowledgeTask("forward", n_characters=4, seed=1, world="glyph")
    inv = KnowledgeTask("inverse", n_characters=4, seed=1, world="glyph")
    write_published(fwd.samples(), "knowledge", tmp_path / "Forward.jsonl", extras=False)
    write_published(inv.samples(), "knowledge", tmp_path / "pairs.jsonl", extras=False)
    both = read_published(tmp_path, world="glyph")
    by_id = {s.id: s for s in both.samples}
    for s in inv.samples():
        assert by_id[s.id].question == s.question
        assert by_id[s.id].question_answer == s.question_answer
        assert list(by_id[s.id].meta["distractors"]) == list(s.meta["distractors"])
        assert by_id[s.id].target == s.target


# --- malformed input ---------------------------------------------------------------------------
VALID = {
    "math": [{"Question": "Generate as many cups as the result of 8 / 4.", "Answer": "2 cups.", "id": "1"},
             {"Question": "Draw as many pens as 3 - 1.", "Answer": "2 pens", "id": "2"}],
    "mapping": [{"ID": "1", "Question_A": "Rule 1: 'A' means cups. Rule 2: 'B' means pens. "
                 "Please generate the object represented by the letter 'A'.", "Answer": "cup"},
                {"ID": "1", "Question_B": "Rule 1: 'A' means cups. Rule 2: 'B' means pens. "
                 "Please generate the object represented by the letter 'B'.", "Answer": "pen"}],
    "knowledge": [{"ID": 1, "Question": "Generate a photorealistic image of the favorite fruit of "
                   "character Zorvane from WhyUni Lab.", "Answer": "grapes"},
                  {"ID": 2, "Question": "Generate a photorealistic image of the favorite flower of "
                   "character Zorvane from WhyUni Lab.", "Answer": "tulip"}],
    "conversations": [{"id": 1, "conversations": [{"from": "human", "value": "Who is Zorvane?"},
                                                  {"from": "gpt", "value": "A kid."}]},
                      {"id": 2, "conversations": [{"from": "human", "value": "Hair?"},
                                                  {"from": "gpt", "value": "Black."}]}],
}
BAD_VALUES = [None, 3, 2.5, True, [], {}, "", "   ", ["x"], {"a": 1}, -4]


def _mutations(rng: random.Random, family: str) -> tuple[list[bytes], str]:
    """A file of valid lines with exactly one malformed thing in it, and a word the error
    message must contain."""
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in VALID[family]]
    target = rng.randrange(len(lines))
    record = dict(VALID[family][target])
    kind = rng.randrange(10)
    if kind == 0:  # cut the line short: never valid JSON
        raw = lines[target]
        lines[target] = raw[: rng.randrange(1, len(raw) - 1)]
        return lines, "JSON"
    if kind == 1:  # not an object
        lines[target] = json.dumps(rng.choice([[1, 2], "text", 7, None, 1.5])).encode()
        return lines, "object"
    if kind == 2:  # invalid UTF-8
        raw = lines[target]
        cut = rng.randrange(1, len(raw) - 1)
        lines[target] = raw[:cut] + rng.choice([b"\xff", b"\xc3\x28", b"\x80\x80"]) + raw[cut:]
        return lines, "UTF-8"
    if kind == 3:  # a required field removed
        key = rng.choice([k for k in record if family != "mapping" or not k.startswith("Question")])
        del record[key]
        lines[target] = json.dumps(record).encode()
        return lines, "missing"
    if kind == 4:  # a field of the wrong type or empty
        key = rng.choice(list(record))
        bad = rng.choice([v for v in BAD_VALUES if not (key == "ID" and family == "knowledge" and v == 3)
                          and not (key == "id" and family == "conversations" and v in (3, -4, "   "))])
        record[key] = bad
        lines[target] = json.dumps(record).encode()
        return lines, "field"
    if kind == 5:  # an unknown field
        record[rng.choice(["Questoin", "answer", "level", "extra", "Id"])] = "x"
        lines[target] = json.dumps(record).encode()
        return lines, "unknown"
    if kind == 6:  # a duplicate id / pair side
        lines.append(lines[target])
        return lines, "duplicate"
    if kind == 7:  # mapping: half a pair; others: an extras block of the wrong shape
        if family == "mapping":
            del lines[target]
            return lines, "half a pair"
        if family == "conversations":
            record["conversations"] = [{"from": "robot", "value": "hi"}]
            lines[target] = json.dumps(record).encode()
            return lines, "human or gpt"
        record["unisandbox"] = rng.choice([[], "x", {"question": 1}, {"bogus": 1}])
        lines[target] = json.dumps(record).encode()
        return lines, "unisandbox"
    if kind == 9:  # a key given twice: JSON keeps the last, which would change a label silently
        key = rng.choice(list(record))
        lines[target] = b"{" + json.dumps(key).encode() + b": \"other\", " + lines[target][1:]
        return lines, "given twice"
    # kind 8: deep nesting / garbage after the object
    lines[target] = rng.choice([b"[" * 5000, lines[target] + b" trailing", b"{\"a\": }", b"{,}"])
    return lines, ""


def test_a_thousand_fuzzed_malformed_files_give_clear_errors(tmp_path, capsys):
    rng = random.Random(1234)
    families = list(VALID)
    seen_kinds = set()
    for i in range(1000):
        family = families[i % len(families)]
        lines, needle = _mutations(rng, family)
        path = tmp_path / f"f{i}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        with pytest.raises(DataError) as caught:
            if family == "conversations":
                read_conversations(path)
            else:
                read_published(path, family=family)
        err = caught.value
        assert err.path == path and isinstance(err.line, int) and err.line >= 1, str(err)
        assert str(path) in str(err) and needle.lower() in str(err).lower(), (needle, str(err))
        seen_kinds.add(needle)
        # the CLI turns the same error into one line and exit code 2, never a traceback
        if i % 10 == 0 and family != "conversations":
            code = main(["data", "stats", str(path), "--family", family])
            out = capsys.readouterr()
            assert code == 2 and out.err.startswith("Error: ") and out.err.count("\n") == 1, out.err
            assert "Traceback" not in out.err
    assert len(seen_kinds) >= 10


def test_missing_and_empty_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_published(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="no records"):
        read_published(tmp_path / "empty.jsonl", family="math")
    with pytest.raises(UserError, match="family must be one of"):
        read_published(tmp_path / "empty.jsonl", family="poetry")


def test_file_task_arguments_are_checked(tmp_path):
    with pytest.raises(UserError):
        FileTask(str(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize("bad", ["a\\u0000b", "a\\nb", "7 ", "x" * 300])
def test_an_id_that_cannot_name_an_image_file_is_refused(bad, tmp_path):
    path = tmp_path / "m.jsonl"
    line = '{"Question": "Draw as many pens as 3 - 1.", "Answer": "2 pens", "id": "BAD"}\n'
    path.write_text(line.replace("BAD", bad))
    with pytest.raises(DataError, match=r"m.jsonl:1: field 'id'"):
        read_published(path, family="math")
