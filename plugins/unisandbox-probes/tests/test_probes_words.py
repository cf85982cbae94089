"""Relevant words and their tokens: variants, first pieces, groups from real task samples."""

from __future__ import annotations

import pytest
from unisandbox.factories import build
from unisandbox.registry import get_registry
from unisandbox_probes.words import (
    ANSWER,
    COUNT,
    DISTRACTOR,
    answer_words,
    group_ids,
    head_nouns,
    lookup,
    primary_group,
    surface_forms,
    token_groups,
)


def samples(task: str, **args):
    return list(build(get_registry().task(task), {"world": "glyph", **args}).samples())


def test_numbers_have_digit_and_word_forms():
    assert set(surface_forms("3")) == {"3", "three", "Three"}
    assert set(surface_forms("seven")) == {"seven", "Seven", "7"}
    assert set(surface_forms("20")) == {"20", "twenty", "Twenty"}
    assert surface_forms("21") == ["21"]  # no number word past 20


def test_plurals_only_for_nouns():
    vocab = {"orange": 0, "oranges": 1, "triangle": 2, "triangles": 3, "strawberries": 4,
             "strawberry": 5, "woman": 6, "women": 7}
    assert lookup("orange", vocab, noun=False).tokens == ("orange",)  # the colour, not the fruit
    assert set(lookup("oranges", vocab).tokens) == {"orange", "oranges"}
    assert set(lookup("triangles", vocab).tokens) == {"triangle", "triangles"}
    assert set(lookup("strawberries", vocab).tokens) == {"strawberry", "strawberries"}
    assert set(lookup("woman", vocab).tokens) == {"woman", "women"}


def test_space_markers_and_capitals_of_bpe_vocabularies():
    vocab = {"Ġred": 5, "ĠRed": 6, "red": 7, "Ġblue": 8}
    got = lookup("Red", vocab, noun=False)
    assert set(got.tokens) == {"Ġred", "ĠRed", "red"} and not got.piece
    assert set(got.ids) == {5, 6, 7}


def test_unknown_word_uses_its_longest_first_piece():
    vocab = {"e": 1, "el": 2, "elv": 3, "##i": 4, "Ġelvi": 5}
    got = lookup("Elvidririx", vocab)
    assert got.piece and got.tokens == ("Ġelvi",) and got.ids == (5,)
    assert lookup("elvidririx", {"e": 1, "el": 2}).tokens == ("el",)
    missing = lookup("zyx", {"a": 0})
    assert missing.tokens == () and missing.to_json()["missing"] is True


def test_head_nouns_take_plurals_modifiers_do_not():
    assert head_nouns(["3 orange triangles"]) == {"triangles"}
    assert head_nouns(["An elderly South Asian woman with red hair."]) == {"woman", "hair"}


def test_groups_from_real_samples():
    math = samples("math-1", n=3)[0]
    assert answer_words(math) == {COUNT: [str(math.target["count"])],
                                  ANSWER: math.answer.split()[1:]}
    assert primary_group(answer_words(math)) == COUNT

    a, b = samples("mapping-1", n=1)
    groups = answer_words(a)
    assert groups[ANSWER] == a.answer.split()
    assert set(groups[DISTRACTOR]) <= set(b.answer.split())
    assert primary_group(groups) == ANSWER

    portrait = samples("knowledge-forward")[0]
    words = answer_words(portrait)[ANSWER]
    assert "hair" not in words and "with" not in words and len(words) >= 3

    inverse = samples("knowledge-inverse")[0]
    assert answer_words(inverse)[DISTRACTOR] == [inverse.meta["distractors"][0].lower()]


def test_distractor_tokens_never_repeat_answer_tokens():
    from unisandbox.records import Sample

    sample = Sample(id="1", prompt="p", answer="purple heart",
                    meta={"distractors": ["purple hearts", "blue star"]})
    vocab = {"purple": 0, "heart": 1, "hearts": 2, "blue": 3, "star": 4}
    groups = token_groups(sample, vocab)
    assert set(group_ids(groups[ANSWER])) == {0, 1, 2}
    assert set(group_ids(groups[DISTRACTOR])) == {3, 4}


def test_a_sample_without_content_words_is_refused():
    with pytest.raises(ValueError, match="no content words"):
        primary_group({})
