"""Small pieces of the task suite: expressions, prompt reading, rule parsing, the worlds, the
understanding checks (and what must make them fail), argument errors."""

from __future__ import annotations

from fractions import Fraction

import attrs
import pytest
from unisandbox.answers import singular
from unisandbox.errors import UserError
from unisandbox.factories import build
from unisandbox.records import Sample
from unisandbox.registry import get_registry
from unisandbox.tasks import expr as E
from unisandbox.tasks.arith import MathTask, last_number, read_math_prompt
from unisandbox.tasks.common import final_sentence, parse_counts
from unisandbox.tasks.knowledge import KnowledgeTask
from unisandbox.tasks.mapping import MappingTask, parse_rules, resolve, same_object
from unisandbox.world import get_world


# --- expressions -----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("3 + 2 - √25", 0), ("10 % 3 + 1", 2), ("(12 / √4) - 5", 1), ("2^3 / 4 - 1", 1),
    ("√49 / 3", Fraction(7, 3)), ("5^0 * 3 + 1", 4), ("8 - 2 * √1 + 3", 9), ("2 * (10 - 2^3)", 4),
    ("2^2^3", 256), ("-3 + 5", 2), ("(5 + 5 - 8) / 2", 1), ("4 × 2 ÷ 8", 1), ("3²", 9),
])
def test_parse_and_evaluate_exactly(text, value):
    node = E.parse(text)
    assert E.evaluate(node) == value
    assert E.evaluate(E.parse(E.to_text(node))) == value  # printing keeps the meaning


@pytest.mark.parametrize(("text", "error"), [
    ("4 / 0", E.EvalError), ("√8", E.EvalError), ("2^(1/2)", E.EvalError), ("9^99", E.EvalError),
    ("3 +", E.ParseError), ("(3 + 4", E.ParseError), ("3 4", E.ParseError), ("2.5 + 1", E.ParseError),
    ("x + 1", E.ParseError), ("", E.ParseError),
])
def test_bad_expressions_fail_cleanly(text, error):
    with pytest.raises(error):
        E.evaluate(E.parse(text))


def test_canonical_form_ignores_order_of_commutative_operands_and_parentheses():
    assert E.canonical(E.parse("2 + 3")) == E.canonical(E.parse("(3 + 2)"))
    assert E.canonical(E.parse("2 * √9")) == E.canonical(E.parse("√9 * 2"))
    assert E.canonical(E.parse("5 - 3")) != E.canonical(E.parse("3 - 5"))
    assert E.steps(E.parse("(√16 - 3) * 2")) == ["√16 = 4.", "4 - 3 = 1.", "1 * 2 = 2."]


@pytest.mark.parametrize(("policy", "expected"), [("floor", 2), ("round", 3), ("exact", None)])
def test_rounding_policies(policy, expected):
    assert E.round_value(Fraction(5, 2), policy) == expected
    assert E.round_value(Fraction(4), policy) == 4


@pytest.mark.parametrize(("prompt", "expression", "obj", "rounding"), [
    ("Generate as many cups as the result of 8 / 4.", "8 / 4", "cups", None),
    ("Create the same quantity of belts as 11 / 4 equals then rounded down.", "11 / 4", "belts", "floor"),
    ("Create the same quantity of kittens as the square root of 9 plus 1 minus 2.", "√9 + 1 - 2", "kittens", None),
    ("Generate the outcome of the square root of 16 minus 3, then add 2.", "(√16 - 3) + 2", None, None),
    ("Produce as many pairs of socks as (9 - 3) / 2 + 1.", "(9 - 3) / 2 + 1", "pairs of socks", None),
    ("Show the number of red stars that matches the outcome of 7 - 4, rounded down.", "7 - 4", "red stars", "floor"),
])
def test_read_math_prompts(prompt, expression, obj, rounding):
    read = read_math_prompt(prompt)
    assert (read.expression, read.object, read.rounding, read.problem) == (expression, obj, rounding, None)


@pytest.mark.parametrize("prompt", [
    "Create the same quantity of shirts as √(M² + 9) where M = 1.",
    "Produce the result of (7 + 4 - 9) where all terms are squared, then take square root twice.",
    "Draw as many cups as 3 and then 4.",
    "Draw a nice picture.",
])
def test_unreadable_math_prompts_say_why(prompt):
    read = read_math_prompt(prompt)
    assert read.node is None and read.problem


# --- rules -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "query", "answer"), [
    ("Rule 1: The symbol A represents chairs. Rule 2: The symbol B represents tables. "
     "Please generate the object represented by the symbol A.", "A", "chairs"),
    ("Rule 1: The symbol a represents apples. Rule 2: The symbol b represents trays. "
     "Please generate the object represented by the symbol b.", "b", "trays"),
    ("Rule 1: The symbol ? represents oranges. Rule 2: The symbol | represents lemons. "
     "Please generate the fruit represented by the symbol ?.", "?", "oranges"),
    ("Rule 1: The symbol '@' maps to 'P'. Rule 2: 'N' refers to '@'. Rule 3: The number 7 "
     "represents a bicycle. Rule 4: 'P' stands for the number 7. Rule 5: '%' refers to 'Q'. "
     "Rule 6: 'Q' stands for the number 8, which means skateboard. Please generate the vehicle "
     "represented by the symbol 'N'.", "N", "bicycle"),
    ("Rule 1: The letter D is linked to * symbol. Rule 2: * represents dog. Rule 3: 1 is for cat. "
     "Rule 4: The letter E is linked to 1. Please generate the pet represented by the letter 'E'.", "E", "cat"),
    ("Rule 1: '%' is a symbol for a phone. Rule 2: 'N' refers to '%'. Which object does the "
     "letter 'N' stand for?", "N", "phone"),
])
def test_parse_and_resolve_published_rule_styles(text, query, answer):
    rules = parse_rules(text)
    assert rules.query == query and not rules.problems
    assert resolve(rules.rules, query).object == answer


def test_resolver_reports_broken_chains():
    rules = parse_rules("Rule 1: 'A' maps to 'B'. Rule 2: 'B' maps to 'A'. Rule 3: 'C' maps to '$'. "
                        "Rule 4: 'D' means cups. Rule 5: 'D' means pens. Please generate 'A'.").rules
    assert "loops" in resolve(rules, "A").problem
    assert "not defined" in resolve(rules, "C").problem
    assert "conflicting" in resolve(rules, "D").problem


def test_same_object_folds_plurals_both_ways():
    assert same_object("1 cookie"[2:], "cookies") and same_object("shoe", "shoes")
    assert same_object("Chairs", "a chair") and same_object("boxes", "box")
    assert not same_object("cup", "cap") and not same_object("red star", "star")


# --- worlds ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["everyday", "glyph"])
def test_world_vocabulary_folds_and_is_unambiguous(name):
    world = get_world(name)
    things = (*world.objects, *world.fruits, *world.flowers)
    for t in things:
        assert singular(t.plural_kind) == singular(t.kind), t
    names = [t.name(1) for t in world.objects]
    assert len(set(names)) == len(names) >= 40
    assert set(world.portrait) == {"ethnicity", "hair", "age", "gender"}
    assert world.portrait["age"] == ("kid", "young", "middle-aged", "old")


def test_everyday_world_has_the_published_vocabulary():
    world = get_world("everyday")
    assert {"African/Indigenous", "Caucasian", "East Asian"} == set(world.portrait["ethnicity"])
    assert {"grapes", "peaches", "watermelons"} <= {t.plural_kind for t in world.fruits}
    assert {"tulip", "orchid", "carnation"} <= {t.kind for t in world.flowers}
    assert all(t.colour is None for t in world.objects)
    with pytest.raises(UserError, match="unknown world"):
        get_world("moon")


def test_a_world_is_built_once_and_registering_replaces_it(monkeypatch):
    from unisandbox.world import World, base, register_world
    from unisandbox.world.glyph import glyph_world

    monkeypatch.setattr(base, "_WORLDS", dict(base._WORLDS))  # the test's world stays here
    monkeypatch.setattr(base, "_BUILT", dict(base._BUILT))
    assert get_world("glyph") is get_world("glyph")
    register_world("glyph-copy", lambda: attrs.evolve(glyph_world(), name="glyph-copy"))
    first = get_world("glyph-copy")
    register_world("glyph-copy", lambda: attrs.evolve(glyph_world(), name="glyph-copy", description="v2"))
    assert get_world("glyph-copy") is not first and get_world("glyph-copy").description == "v2"
    assert isinstance(first, World)


# --- understanding checks: what must pass, and what must not -------------------------------
def test_math_understanding_reads_the_last_number():
    task = MathTask(1, n=1)
    s = Sample(id="1", prompt="", answer="", question="What is 7 - 4?", question_answer="3")
    for reply in ("3", "The answer is 3.", "7 - 4 = 3", "three", "7 minus 4 is 3.0"):
        assert task.check_understanding(s, reply), reply
    for reply in ("", "4", "3 or 4", "It is 3, no wait, 5", "7 - 4", "thirty"):
        assert not task.check_understanding(s, reply), reply
    assert last_number("it is 7/3") == Fraction(7, 3)


def test_mapping_understanding_rejects_hedges_and_rule_dumps():
    task = MappingTask(2, n=1, world="glyph")
    s = task.samples()[0]
    right, wrong = s.question_answer, s.meta["distractors"][0]
    assert task.check_understanding(s, right)
    assert task.check_understanding(s, f"{s.meta['steps'][0]} So the answer is a {right}.")
    assert task.check_understanding(s, " ".join(s.meta["steps"]))
    for reply in (wrong, f"{right} or {wrong}", f"Either {wrong} or {right}.", "",
                  f"It is {right}. Actually it is {wrong}.", right.split()[-1]):
        assert not task.check_understanding(s, reply), reply


def test_knowledge_understanding_checks_every_portrait_attribute():
    task = KnowledgeTask("forward", n_characters=4)
    portrait = next(s for s in task.samples() if s.meta["kind"] == "portrait")
    assert task.check_understanding(portrait, portrait.meta["steps"][0])
    desc = portrait.question_answer
    other_hair = next(h for h in task.world.portrait["hair"] if h != portrait.meta["portrait"]["hair"])
    assert not task.check_understanding(portrait, desc.replace(portrait.meta["portrait"]["hair"], other_hair))
    assert not task.check_understanding(portrait, f"{desc} or with {other_hair} hair")
    assert not task.check_understanding(portrait, desc.rsplit(" with ", 1)[0])  # hair missing
    fruit = next(s for s in task.samples() if s.meta["kind"] == "fruit")
    assert task.check_understanding(fruit, fruit.meta["steps"][0])
    assert not task.check_understanding(fruit, f"{fruit.question_answer} or {fruit.meta['distractors'][0]}")
    inverse = KnowledgeTask("inverse", n_characters=4).samples()[0]
    assert KnowledgeTask("inverse", n_characters=4).check_understanding(inverse, inverse.question_answer)
    loser = inverse.meta["distractors"][0]
    for reply in (loser, f"{inverse.question_answer} or {loser}", "Both of them."):
        assert not KnowledgeTask("inverse", n_characters=4).check_understanding(inverse, reply)


# --- consistency: the model's own answer against its own description --------------------
def test_math_consistency_counts_the_prompts_object_as_the_own_answer_says():
    task = MathTask(2, n=1, world="glyph")
    s = task.samples()[0]
    value, noun = int(s.question_answer), s.answer.split(" ", 1)[1]
    worked = " ".join(s.meta["steps"][:-1])  # the working ends in the value
    assert task.consistent(s, worked, f"The image shows {s.answer}.")
    assert task.consistent(s, str(value + 1), f"The image shows {value + 1} {noun}.")  # wrong but consistent
    assert not task.consistent(s, worked, f"The image shows {value + 1} {noun}.")
    one = Sample(id="x", prompt="", answer="1 red star", question="What is 3 - 2?", question_answer="1",
                 target={"kind": "star", "colour": "red", "count": 1})
    assert task.consistent(one, "1", "The image shows a red star.")
    assert not task.consistent(one, "1", "The image shows a blue star.")  # another object
    assert not task.consistent(one, "1", "The image shows a red star and a red star.")  # named twice
    assert not task.consistent(one, "1", "The image shows a red star and 2 blue hearts.")  # something else
    for unusable in ("", "I cannot tell.", "7/3"):
        assert task.consistent(s, unusable, f"The image shows {s.answer}.") is None


def test_mapping_consistency_follows_the_object_the_reply_names():
    task = MappingTask(2, n=1, world="glyph")
    s = task.samples()[0]
    right, other = s.question_answer, s.meta["distractors"][0]
    assert task.consistent(s, " ".join(s.meta["steps"]), f"The image shows a {right}.")
    assert not task.consistent(s, " ".join(s.meta["steps"]), f"The image shows a {other}.")
    assert task.consistent(s, f"So a {other}.", f"The image shows a {other}.")  # wrong but consistent
    assert not task.consistent(s, f"So a {right}.", f"The image shows a {right} and a {other}.")
    for unusable in ("", f"{right} or {other}", "So nothing."):
        assert task.consistent(s, unusable, f"The image shows a {right}.") is None


def test_knowledge_consistency_compares_portrait_attributes_and_refuses_inverse_prompts():
    task = KnowledgeTask("forward", n_characters=4, world="glyph")
    portrait = next(s for s in task.samples() if s.meta["kind"] == "portrait")
    desc = portrait.question_answer
    hair = portrait.meta["portrait"]["hair"]
    other_hair = next(h for h in task.world.portrait["hair"] if h != hair)
    assert task.consistent(portrait, portrait.meta["steps"][0], f"The image shows a portrait of {desc}.")
    assert not task.consistent(portrait, portrait.meta["steps"][0],
                               f"The image shows a portrait of {desc.replace(hair, other_hair)}.")
    assert task.consistent(portrait, desc.rsplit(" with ", 1)[0], f"A portrait of {desc}.") is None
    fruit = next(s for s in task.samples() if s.meta["kind"] == "fruit")
    assert task.consistent(fruit, fruit.meta["steps"][0], f"The image shows {fruit.question_answer}.")
    assert not task.consistent(fruit, fruit.meta["steps"][0], f"The image shows {fruit.meta['distractors'][0]}.")
    inverse_task = KnowledgeTask("inverse", n_characters=4, world="glyph")
    with pytest.raises(NotImplementedError, match="inverse"):
        inverse_task.consistent(inverse_task.samples()[0], "Utassa", "A portrait of someone.")


def test_final_sentence():
    assert final_sentence("'C' refers to '!'. '!' stands for cups. So cups.") == "So cups."
    assert final_sentence("a\n\nb. c") == "c"
    assert final_sentence("") == ""


# --- arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [("1-5", (1, 2, 3, 4, 5)), ("3", (3,)),
                                                 ("1,2,4", (1, 2, 4)), (2, (2,)), ([1, 3], (1, 3))])
def test_parse_counts(value, expected):
    assert parse_counts(value) == expected


@pytest.mark.parametrize(("name", "args", "needle"), [
    ("math-1", {"counts": "5-1"}, "counts"), ("math-1", {"counts": "abc"}, "counts"),
    ("math-2", {"n": -3}, "n must be"), ("math-2", {"n": "many"}, "n must be an integer"),
    ("math-3", {"split": "validation"}, "split must be one of"),
    ("mapping-1", {"world": "mars"}, "unknown world"), ("mapping-2", {"counts": "1-5"}, "unknown argument"),
    ("knowledge-forward", {"n_characters": 0}, "n_characters"), ("knowledge-inverse", {"seed": -1}, "seed"),
    ("unisandbox-file", {}, r"needs --task-arg path="), ("unisandbox-file", {"path": "/nonexistent/x.jsonl"}, "no such file"),
])
def test_bad_task_arguments_are_user_errors(name, args, needle):
    with pytest.raises(UserError, match=needle):
        build(get_registry().task(name), args).samples()


def test_every_task_is_registered_with_a_description():
    specs = {s.name: s for s in get_registry().all("task")}
    for name in ("math-1", "math-2", "math-3", "mapping-1", "mapping-2", "mapping-3",
                 "knowledge-forward", "knowledge-inverse", "unisandbox-file"):
        assert name in specs and specs[name].distribution == "unisandbox" and specs[name].description
        if name != "unisandbox-file":
            task = build(specs[name], {"n": 4})
            assert task.name == name and task.samples() and task.chance is not None
            s = task.samples()[0]
            assert s.question and s.question_answer and s.meta["steps"][-1].startswith("So draw ")
            assert s.meta["draw"] in s.meta["steps"][-1]


def test_fewer_characters_are_a_prefix_of_more():
    few = KnowledgeTask("forward", n_characters=4, seed=9).characters()
    many = KnowledgeTask("forward", n_characters=12, seed=9).characters()
    assert few == many[:4]
