"""Which vocabulary tokens stand for a sample's answer: tokenizer-aware variant sets.

The lens measures "how much probability sits on the answer". A word reaches the vocabulary in
many surface forms (``triangle`` / ``triangles``, ``3`` / ``three``, ``Red`` / ``red``, with
a leading-space marker in byte-level BPE: ``Ġred``), so each word becomes the set of every
form the vocabulary holds. A word the vocabulary does not hold in any form (an injected
character name in the sandbox's word-level tokenizer, a rare word in BPE) is represented by
its *first piece*: the longest vocabulary entry that starts the word, which is what a
longest-match-first tokenizer (WordPiece) emits first. The output marks such words, because
a first piece such as ``e`` also starts many other words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import attrs
from unisandbox.answers import NUMBER_WORDS, singular
from unisandbox.records import Sample

#: Words that carry no information about which item this is.
STOPWORDS = frozenset({"a", "an", "the", "of", "with", "and", "or", "to", "is", "hair",
                       "portrait", "photorealistic", "image", "picture", "so", "draw"})
#: Leading-space markers of byte-level BPE (GPT-2 / Qwen) and SentencePiece vocabularies.
SPACE_MARKERS = ("", "Ġ", "▁")
_IRREGULAR = {"woman": "women", "man": "men", "child": "children", "person": "people",
              "mouse": "mice", "foot": "feet", "tooth": "teeth", "goose": "geese"}
_WORD = re.compile(r"[a-z]+|[0-9]+")
_SEGMENT = re.compile(r"\b(?:with|of|and|or|from|in)\b|[,.;:!?]")

#: Group names, in the order the output lists them.
COUNT, ANSWER, DISTRACTOR = "count", "answer", "distractor"
GROUPS = (COUNT, ANSWER, DISTRACTOR)


@attrs.frozen
class WordTokens:
    """One word and the vocabulary entries counted for it.

    ``piece`` is True when no form of the word is a token and its first piece stands in;
    ``tokens`` is empty when not even a first piece exists (the word is not measurable).
    """

    word: str
    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    piece: bool = False

    def to_json(self) -> dict[str, object]:
        return {"word": self.word, "tokens": list(self.tokens), "ids": list(self.ids),
                "piece": self.piece, "missing": not self.tokens}


def plural_forms(word: str) -> list[str]:
    """Singular and plural spellings of ``word`` (regular rules plus a few irregulars)."""
    one = singular(word)
    for single, many in _IRREGULAR.items():
        if word in (single, many):
            return [single, many]
    forms = [word, one, one + "s", one + "es"]
    if one.endswith("y"):
        forms.append(one[:-1] + "ies")
    return list(dict.fromkeys(forms))


def surface_forms(word: str, noun: bool = True) -> list[str]:
    """Every spelling of ``word`` to look up: number word <-> digits, capitalised, and for a
    noun its singular and plural (not for modifiers: the colour ``orange`` is not ``oranges``)."""
    word = word.lower()
    if word.isdigit():
        base = [word] + ([NUMBER_WORDS[int(word)]] if int(word) < len(NUMBER_WORDS) else [])
    elif word in NUMBER_WORDS:
        base = [word, str(NUMBER_WORDS.index(word))]
    else:
        base = plural_forms(word) if noun else [word]
    out: list[str] = []
    for form in base:
        out += [form, form.capitalize()]
    return list(dict.fromkeys(out))


def lookup(word: str, vocab: Mapping[str, int], noun: bool = True) -> WordTokens:
    """The vocabulary entries for ``word``: every form present, else its first piece."""
    word = word.lower()
    found = [m + f for f in surface_forms(word, noun) for m in SPACE_MARKERS if m + f in vocab]
    if found:
        return WordTokens(word, tuple(found), tuple(vocab[t] for t in found))
    best, best_len = "", 0
    for marker in SPACE_MARKERS:
        for end in range(len(word), best_len, -1):
            if marker + word[:end] in vocab:
                best, best_len = marker + word[:end], end
                break
    if best:
        return WordTokens(word, (best,), (vocab[best],), piece=True)
    return WordTokens(word, (), ())


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def head_nouns(texts: Iterable[str]) -> set[str]:
    """The last word of each phrase segment ("3 orange *triangles*", "an elderly *woman* with
    red *hair*"): the words that take a plural; the words before them are modifiers."""
    heads = set()
    for text in texts:
        for segment in _SEGMENT.split(text.lower()):
            ws = _words(segment)
            if ws:
                heads.add(ws[-1])
    return heads


def answer_words(sample: Sample) -> dict[str, list[str]]:
    """The sample's relevant words by group.

    ``count``: the numbers in the expected answer (math); ``answer``: its other content words
    (the object, the colour, the injected attribute); ``distractor``: content words of the
    wrong alternatives the task names (mapping's other object, knowledge's other fruits or
    characters) that are not answer words: a control the probe should not find.
    """
    count, answer = [], []
    for w in _words(sample.answer):
        if w.isdigit() or w in NUMBER_WORDS:
            count.append(w if w.isdigit() else str(NUMBER_WORDS.index(w)))
        elif w not in STOPWORDS:
            answer.append(w)
    answer_set = {singular(w) for w in answer}
    distractor = [w for d in sample.meta.get("distractors", ()) for w in _words(str(d))
                  if w not in STOPWORDS and not w.isdigit() and singular(w) not in answer_set]
    groups = {COUNT: count, ANSWER: answer, DISTRACTOR: distractor}
    return {g: list(dict.fromkeys(ws)) for g, ws in groups.items() if ws}


def primary_group(groups: Iterable[str]) -> str:
    """The group the tables call "relevant": the count when there is one (math), else the answer."""
    groups = list(groups)
    for name in (COUNT, ANSWER):
        if name in groups:
            return name
    raise ValueError("the sample's answer has no content words to look for")


def token_groups(sample: Sample, vocab: Mapping[str, int]) -> dict[str, list[WordTokens]]:
    """``answer_words`` looked up in ``vocab``; distractor tokens never repeat answer tokens."""
    nouns = head_nouns([sample.answer, *map(str, sample.meta.get("distractors", ()))])
    groups = {g: [lookup(w, vocab, noun=w in nouns) for w in ws]
              for g, ws in answer_words(sample).items()}
    taken = {i for g in (COUNT, ANSWER) for wt in groups.get(g, ()) for i in wt.ids}
    if DISTRACTOR in groups:
        groups[DISTRACTOR] = [_without(wt, taken) for wt in groups[DISTRACTOR]]
    return groups


def _without(wt: WordTokens, ids: set[int]) -> WordTokens:
    keep = [(t, i) for t, i in zip(wt.tokens, wt.ids, strict=True) if i not in ids]
    return WordTokens(wt.word, tuple(t for t, _ in keep), tuple(i for _, i in keep), wt.piece)


def group_ids(words: Iterable[WordTokens]) -> list[int]:
    """The distinct token ids of a group (a token counted once even if two words share it)."""
    return list(dict.fromkeys(i for wt in words for i in wt.ids))
