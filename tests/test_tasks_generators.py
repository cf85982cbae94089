"""Property tests of the procedural generators: right labels, no leaks, reproducible.

Each label is re-checked by code that does not share the generator's logic: math prompts are
evaluated by Python's own arithmetic on Fractions, mapping rules are followed by a small
regex resolver written here, knowledge answers are compared with the injection corpus the
characters are taught with. Per task, the hypothesis tests cover 20 examples x 500 items =
10,000 generated items; the single-set 10,000-item versions are marked slow.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unisandbox.answers import words
from unisandbox.tasks.arith import MathTask
from unisandbox.tasks.knowledge import KnowledgeTask, corpus
from unisandbox.tasks.leaks import check_leaks, identities
from unisandbox.tasks.mapping import MappingTask
from unisandbox.tasks.splits import FRACTIONS, SPLITS, split_of

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**32)
splits = st.sampled_from(SPLITS)
worlds = st.sampled_from(["everyday", "glyph"])


# --- independent checkers -------------------------------------------------------------------
def _sqrt(x: Fraction) -> Fraction:
    root = math.isqrt(int(x))
    assert x.denominator == 1 and root * root == x, f"√{x} is not a perfect square"
    return Fraction(root)


def python_value(prompt: str) -> Fraction:
    """Evaluate the arithmetic in a prompt with Python's operators over Fractions."""
    spans = [m.group() for m in re.finditer(r"[\d\s+\-*/%^√()]+", prompt) if re.search(r"\d", m.group())]
    assert len(spans) == 1, f"expected one expression in {prompt!r}, found {spans}"
    text = spans[0].strip()
    text = re.sub(r"(\d+)", r"F(\1)", text)
    text = re.sub(r"√(F\(\d+\))", r"S(\1)", text).replace("^", "**")
    return eval(text, {"__builtins__": {}}, {"F": Fraction, "S": _sqrt})


def check_math(sample, counts) -> None:
    value = python_value(sample.prompt)
    rounded = "rounded down" in sample.prompt
    count = math.floor(value) if rounded else value
    assert count == int(sample.question_answer) == sample.target["count"], sample
    assert int(count) in counts
    assert rounded == (value.denominator != 1), f"rounding phrase must appear iff inexact: {sample.prompt}"
    assert sample.answer.startswith(f"{int(count)} ")
    assert sample.meta["steps"][-1] == f"So draw {sample.meta['draw']}."
    assert sample.meta["draw"] == sample.answer
    # the U question is about exactly this expression
    assert python_value(sample.question) == value


_OBJ_RULE = re.compile(r"'([^']+)'\s+(?:stands for|means|represents|denotes|signifies)\s+(.+)\.$")


def check_mapping(pair) -> None:
    a, b = pair
    assert a.group == b.group and a.id.endswith("_A") and b.id.endswith("_B")
    rules_a = a.prompt.split(" Please generate")[0]
    assert rules_a == b.prompt.split(" Please generate")[0], "A and B must share the rules"
    table: dict[str, str] = {}
    for body in re.split(r"Rule \d+: ", rules_a)[1:]:
        body = body.strip()
        keys = re.findall(r"'([^']+)'", body)
        if len(keys) == 2:
            table[keys[0]] = "key:" + keys[1]
        else:
            match = _OBJ_RULE.search(body)
            assert match, body
            table[match.group(1)] = match.group(2)
    level = a.level
    assert len(table) == 2 * level
    for sample in (a, b):
        key = re.findall(r"'([^']+)'", sample.prompt)[-1]
        hops = 0
        while table[key].startswith("key:"):
            key = table[key][4:]
            hops += 1
        assert hops + 1 == level == sample.meta["hops"]
        assert words(table[key]) == words(sample.answer) == words(sample.question_answer)
        assert len(sample.meta["steps"]) == level + 1
    assert words(a.answer) != words(b.answer)


def check_knowledge(task, samples) -> None:
    chars = {c.name: c for c in task.characters()}
    taught: dict[str, str] = {}
    for conv in corpus(list(chars.values()), task.world):
        name = next(n for n in chars if n in conv.turns[0].text)
        taught[name] = taught.get(name, "") + " " + conv.turns[1].text
    for s in samples:
        kind = s.meta["kind"]
        if kind == "portrait":
            name = s.meta["characters"][0]
            assert f"{name} is {s.question_answer}." in taught[name]
        elif kind in ("fruit", "flower"):
            name = s.meta["characters"][0]
            assert f"favorite {kind} is {'the ' if kind == 'flower' else ''}{s.answer}." in taught[name]
        else:
            a, b = s.meta["characters"]
            value = s.prompt.rsplit(" is ", 1)[1].rstrip(".")
            fact = kind.split("-")[1]
            likes = [n for n in (a, b)
                     if f"favorite {fact} is {'the ' if fact == 'flower' else ''}{value}." in taught[n]]
            assert likes == [s.question_answer]
            assert f"{likes[0]} is {s.answer[0].lower()}{s.answer[1:]}" in taught[likes[0]]


def check_split_assignment(samples, family, split) -> None:
    for s in samples:
        for ident in identities(s, family):
            assert split_of(ident) == split == s.meta["split"]


# --- the properties ---------------------------------------------------------------------------
@pytest.mark.parametrize("level", [1, 2, 3])
@SETTINGS
@given(seed=seeds, split=splits, world=worlds, counts=st.sampled_from(["1-5", "1-9", "2,4"]))
def test_math_labels_splits_and_determinism(level, seed, split, world, counts):
    task = MathTask(level, n=500, seed=seed, split=split, world=world, counts=counts)
    samples = task.samples()
    assert len(samples) == 500 and [s.id for s in samples] == [str(i) for i in range(1, 501)]
    for s in samples:
        check_math(s, task.counts)
        assert s.level == level
    check_split_assignment(samples, "math", split)
    # same seed, same items; a shorter set is a prefix of a longer one
    again = MathTask(level, n=60, seed=seed, split=split, world=world, counts=counts).samples()
    assert list(again) == list(samples[:60])


@pytest.mark.parametrize("level", [1, 2, 3])
@SETTINGS
@given(seed=seeds, split=splits, world=worlds)
def test_mapping_labels_splits_and_determinism(level, seed, split, world):
    task = MappingTask(level, n=250, seed=seed, split=split, world=world)
    samples = task.samples()
    assert len(samples) == 500
    for i in range(0, 500, 2):
        check_mapping(samples[i : i + 2])
    check_split_assignment(samples, "mapping", split)
    again = MappingTask(level, n=30, seed=seed, split=split, world=world).samples()
    assert list(again) == list(samples[:60])


@pytest.mark.parametrize("direction", ["forward", "inverse"])
@SETTINGS
@given(seed=seeds, split=splits, world=worlds)
def test_knowledge_labels_splits_and_determinism(direction, seed, split, world):
    # forward: 3 prompts per character, inverse: 2 per character -> 500 items
    n_chars = 168 if direction == "forward" else 250
    task = KnowledgeTask(direction, seed=seed, split=split, world=world, n_characters=n_chars)
    samples = task.samples()[:500]
    assert len(samples) == 500
    check_knowledge(task, samples)
    check_split_assignment(samples, "knowledge", split)
    again = KnowledgeTask(direction, seed=seed, split=split, world=world, n_characters=n_chars)
    assert again.samples()[:500] == samples


TASKS = [("math", lambda sp, n: MathTask(1, n=n, split=sp, seed=5)),
         ("math", lambda sp, n: MathTask(2, n=n, split=sp, seed=5)),
         ("math", lambda sp, n: MathTask(3, n=n, split=sp, seed=5)),
         ("mapping", lambda sp, n: MappingTask(1, n=n // 2, split=sp, seed=5)),
         ("mapping", lambda sp, n: MappingTask(2, n=n // 2, split=sp, seed=5)),
         ("mapping", lambda sp, n: MappingTask(3, n=n // 2, split=sp, seed=5)),
         ("knowledge", lambda sp, n: KnowledgeTask("forward", split=sp, seed=5, n_characters=n // 3)),
         ("knowledge", lambda sp, n: KnowledgeTask("inverse", split=sp, seed=5, n_characters=n // 2))]


@pytest.mark.parametrize(("family", "make"), TASKS)
def test_splits_share_nothing(family, make):
    groups = {sp: make(sp, 1200).samples() for sp in SPLITS}
    report = check_leaks(groups, family)
    assert report.ok, report.to_json()
    # identities are genuinely spread over the splits (the hash is not degenerate)
    assert all(len({i for s in g for i in identities(s, family)}) > 5 for g in groups.values())


def test_leak_checker_finds_planted_leaks():
    train = MathTask(2, n=200, split="train").samples()
    test = list(MathTask(2, n=200, split="test").samples())
    report = check_leaks({"train": train, "test": [*test, train[0]]}, "math")
    assert not report.ok
    assert train[0].meta["identity"] in report.shared_identities
    assert ("test", train[0].id, "train", "train") not in report.misassigned
    # a sample that claims the wrong split is caught even with no overlap
    liar = attrs.evolve(train[1], meta={**train[1].meta, "split": "test"})
    report = check_leaks({"test": [*test[:5], liar]}, "math")
    assert report.misassigned == (("test", liar.id, "test", "train"),)
    # an identity re-derived from the prompt alone (no meta) is the same identity
    bare = train[0].__class__(id="x", prompt=train[0].prompt, answer=train[0].answer)
    assert identities(bare, "math") == (train[0].meta["identity"],)


def test_split_function_is_stable_and_balanced():
    # pinned values: changing the split rule silently would move items between splits
    assert [split_of(f"math:{i}") for i in range(8)] == [split_of(f"math:{i}") for i in range(8)]
    got = [split_of(f"id-{i}") for i in range(20000)]
    for name in SPLITS:
        assert abs(got.count(name) / len(got) - FRACTIONS[name]) < 0.015


def test_names_are_novel_and_distinct_across_splits():
    from unisandbox.tasks.names import PUBLISHED, acceptable, dictionary

    names = {sp: {c.name for c in KnowledgeTask("forward", split=sp, n_characters=300).characters()}
             for sp in SPLITS}
    assert not (names["train"] & names["test"]) and not (names["dev"] & names["test"])
    for group in names.values():
        for name in group:
            assert acceptable(name) and name.lower() not in dictionary()
            assert name.lower() not in PUBLISHED
    assert not acceptable("Aurelius") and not acceptable("Banana") and not acceptable("Victoria")


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda sp: MathTask(1, n=10000, split=sp),
                                  lambda sp: MathTask(2, n=10000, split=sp),
                                  lambda sp: MathTask(3, n=10000, split=sp),
                                  lambda sp: MappingTask(1, n=5000, split=sp),
                                  lambda sp: MappingTask(2, n=5000, split=sp),
                                  lambda sp: MappingTask(3, n=5000, split=sp)])
def test_ten_thousand_items_per_split(make):
    groups = {sp: make(sp).samples() for sp in SPLITS}
    family = (groups["test"][0].meta.get("hops") and "mapping") or "math"
    for samples in groups.values():
        if family == "math":
            for s in samples:
                check_math(s, (1, 2, 3, 4, 5))
        else:
            for i in range(0, len(samples), 2):
                check_mapping(samples[i : i + 2])
    assert check_leaks(groups, family).ok


def test_a_set_built_from_a_handful_of_expressions_says_so():
    from unisandbox.errors import DataWarning
    from unisandbox.tasks.arith import generate_items
    from unisandbox.world import get_world

    with pytest.warns(DataWarning, match=r"only 1 distinct dev expression"):
        generate_items(1, 100, 0, "dev", get_world("everyday"), [20])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default sets stay quiet
        generate_items(1, 100, 0, "test", get_world("glyph"), [1, 2, 3, 4, 5])


def test_knowledge_n_beyond_what_the_characters_give_is_said():
    from unisandbox.errors import DataWarning
    from unisandbox.tasks.knowledge import KnowledgeTask

    assert len(KnowledgeTask("forward", n=30, n_characters=10).samples()) == 30
    with pytest.warns(DataWarning, match=r"n=31, but 10 characters give 30 forward prompts, so it "
                                         r"has 30; for more, raise its n_characters argument"):
        assert len(KnowledgeTask("forward", n=31, n_characters=10).samples()) == 30
