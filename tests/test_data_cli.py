"""``unisandbox data generate|audit|stats|leaks`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unisandbox.cli.main import main
from unisandbox.tasks.knowledge import KnowledgeTask
from unisandbox.tasks.published import read_conversations, read_published

BENCH = Path(__file__).resolve().parents[2] / "shared" / "reference" / "unisandbox-official" / "benchmark"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_writes_the_published_schema_reproducibly(tmp_path, capsys):
    out = tmp_path / "m2.jsonl"
    code, text, _ = run(capsys, "data", "generate", "math-2", "--n", "20", "--world", "glyph",
                        "--split", "test", "--seed", "4", "--out", str(out))
    assert code == 0 and "wrote 20 items of math-2" in text
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 20 and set(lines[0]) == {"Question", "Answer", "id", "unisandbox"}
    first = out.read_bytes()
    run(capsys, "data", "generate", "math-2", "--n", "20", "--world", "glyph", "--seed", "4", "--out", str(out))
    assert out.read_bytes() == first
    run(capsys, "data", "generate", "math-2", "--n", "20", "--world", "glyph", "--seed", "5", "--out", str(out))
    assert out.read_bytes() != first

    plain = tmp_path / "map.jsonl"
    code, text, _ = run(capsys, "data", "generate", "mapping-3", "--n", "5", "--plain", "--out", str(plain))
    assert code == 0 and "wrote 5 pairs" in text
    rows = [json.loads(x) for x in plain.read_text().splitlines()]
    assert [set(r) for r in rows[:2]] == [{"ID", "Question_A", "Answer"}, {"ID", "Question_B", "Answer"}]
    assert read_published(plain).samples[0].question_answer  # re-derived from the prompt

    know = tmp_path / "k.jsonl"
    code, _, _ = run(capsys, "data", "generate", "knowledge-inverse", "--n-characters", "4",
                     "--out", str(know))
    assert code == 0 and len(know.read_text().splitlines()) == 8
    assert all(isinstance(json.loads(x)["ID"], int) for x in know.read_text().splitlines())


def test_generate_the_injection_corpus(tmp_path, capsys):
    out = tmp_path / "corpus.jsonl"
    code, text, _ = run(capsys, "data", "generate", "knowledge-corpus", "--n-characters", "4",
                        "--seed", "2", "--world", "glyph", "--out", str(out))
    assert code == 0 and "wrote 160 conversations about 4 characters" in text
    convs = read_conversations(out)
    names = [c.name for c in KnowledgeTask("forward", n_characters=4, seed=2, world="glyph").characters()]
    assert all(n in text for n in names)
    assert len(convs) == 160 and len({c.turns[0].text for c in convs}) == 160
    for c in convs:  # name -> attribute only: every question names the character
        assert sum(n in c.turns[0].text for n in names) == 1
        assert not c.turns[0].text.lower().startswith(("who likes", "whose"))


@pytest.mark.parametrize(("args", "needle"), [
    (["mapping-1", "--counts", "1-3"], "unknown argument 'counts'"),
    (["math-1", "--counts", "0-3"], "counts must lie within"),
    (["math-1", "--world", "glyph", "--counts", "15-18"], "a picture of the glyph world shows 1 to 16 objects"),
    (["math-1", "--world", "moon"], "unknown world 'moon'"),
    (["nope"], "'nope' is not a task that generates items; choose from knowledge-forward"),
    (["unisandbox-file"], "'unisandbox-file' is not a task that generates items"),
    (["knowledge-corpus", "--n", "3"], "knowledge-corpus takes"),
    (["math-1", "--n", "0"], "n must be between"),
    (["knowledge-forward", "--n-characters", "1"], "n_characters must be between"),
    (["math-1", "--task-arg", "n=3", "--n", "5"], "has its own option for it, --n"),
    (["math-1", "--task-arg", "counts=1-3", "--task-arg", "counts=2-4"], "counts given twice"),
    (["unisandbox-file", "--task-arg", "level=1", "--task-arg", "level=true"], "level given twice"),
])
def test_generate_bad_arguments_are_one_line_errors(tmp_path, capsys, args, needle):
    code, _, err = run(capsys, "data", "generate", *args, "--out", str(tmp_path / "x.jsonl"))
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_out_path_that_cannot_be_written_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "keep.jsonl").write_text("kept\n")  # a file where --out wants a folder
    code, _, err = run(capsys, "data", "generate", "math-1", "--n", "3",
                       "--out", str(tmp_path / "keep.jsonl" / "x.jsonl"))
    assert code == 2 and err.startswith("Error: ") and "keep.jsonl" in err and "Traceback" not in err
    assert (tmp_path / "keep.jsonl").read_text() == "kept\n"


@pytest.mark.skipif(not BENCH.is_dir(), reason="reference files not present")
def test_audit_prints_findings_and_ceilings(capsys):
    code, text, err = run(capsys, "data", "audit", str(BENCH), "--rounding", "floor")
    assert code == 0
    assert "warning:" in err and "ID 36" in err
    assert "rounding policy: floor" in text and "ceilings imposed by the labels:" in text
    table = text.split("ceilings imposed by the labels:")[1]
    rows = {line.split()[0]: line.split() for line in table.strip().splitlines()[2:]}
    assert rows["math_3.jsonl"][-2:] == ["79.0", "77.0"]
    assert rows["mapping2.jsonl"][-2:] == ["94.0", "94.0"]
    assert rows["benchmark"][-2] == "92.0"
    assert "3 + 2 - √25 = 0" in text and "10 % 3 + 1 = 2" in text and "undefined" in text
    code, text, _ = run(capsys, "data", "audit", str(BENCH / "math_2.jsonl"), "--rounding", "exact", "--json")
    report = json.loads(text)
    assert report["rounding"] == "exact" and report["files"][0]["counts"]["unwinnable"] == 3


def test_audit_stats_and_leaks_on_generated_files(tmp_path, capsys):
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    for split, path in (("train", train), ("test", test)):
        run(capsys, "data", "generate", "math-1", "--n", "300", "--split", split, "--out", str(path))
    code, text, _ = run(capsys, "data", "audit", str(train), str(test))
    assert code == 0 and text.count("100.0") >= 4
    code, text, _ = run(capsys, "data", "leaks", str(train), str(test))
    assert code == 0 and "no leaks" in text
    code, text, _ = run(capsys, "data", "stats", str(test), "--json")
    info = json.loads(text)
    assert info["samples"] == 300 and info["splits"] == {"test": 300} and info["levels"] == {"1": 300}
    assert set(info["label_counts"]) == {"1", "2", "3", "4", "5"}
    code, text, _ = run(capsys, "data", "stats", str(test))
    assert code == 0 and "family: math" in text
    # plant a leak: one training line in the test file
    with test.open("a") as handle:
        handle.write(train.read_text().splitlines()[0].replace('"id": "1"', '"id": "9999"') + "\n")
    code, text, _ = run(capsys, "data", "leaks", str(train), str(test), "--by", "file")
    assert code == 1 and "LEAK identity" in text
    code, text, _ = run(capsys, "data", "leaks", str(test), "--json")
    assert code == 1 and json.loads(text)["mixed_files"] == {str(test): ["test", "train"]}


def test_help_describes_every_data_command(capsys):
    for argv in (["data", "--help"], ["data", "generate", "--help"], ["data", "audit", "--help"],
                 ["data", "stats", "--help"], ["data", "leaks", "--help"]):
        code, text, _ = run(capsys, *argv)
        assert code == 0 and len(text) > 200
    _, text, _ = run(capsys, "data", "generate", "--help")
    for option in ("--n", "--seed", "--world", "--split", "--counts", "--n-characters", "--out",
                   "--plain", "knowledge-corpus"):
        assert option in text
    _, text, _ = run(capsys, "data", "audit", "--help")
    assert "--rounding" in text and "floor" in text and "exact" in text and "ceiling" in text
