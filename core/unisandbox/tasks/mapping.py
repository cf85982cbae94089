"""Mapping tasks: symbol-rule chains (letter -> symbol -> ... -> object), a rule reader and a
resolver that proves every answer.

Level h has two chains of h rules each (2 / 4 / 6 rules, 1 / 2 / 3 hops); the A and B members
of a pair share the rules and ask for the start of one chain each; rules are shuffled at levels
2-3. The same reader and resolver serve the generator's self-check, the audit of the published
files, the published-file task and the oracle model.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence

import attrs

from ..answers import reply_matches, words
from ..errors import UserError
from ..records import Sample
from ..world import Thing, World
from .common import GeneratedTask, article, check_common, final_sentence, named_one
from .splits import split_of

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
#: Punctuation keys: none that ends a sentence or quotes ('.', '!', '?', ',', quotes).
SYMBOLS = "$%&#@*^~+=<>"
DESCRIPTOR = {"letter": "letter", "digit": "number", "symbol": "symbol"}
#: Key classes per hop position, per level (the first key is what a prompt asks about).
KEY_CLASSES: dict[int, tuple[tuple[str, ...], ...]] = {
    1: (("letter", "digit", "symbol"),),
    2: (("letter",), ("symbol", "digit")),
    3: (("letter",), ("letter", "symbol"), ("digit", "symbol")),
}
_POOLS = {"letter": LETTERS, "digit": DIGITS, "symbol": SYMBOLS}

KEY_TEMPLATES = (
    "The {ds} '{s}' refers to the {dd} '{d}'.",
    "'{s}' maps to '{d}'.",
    "The {ds} '{s}' stands for '{d}'.",
    "'{s}' points to the {dd} '{d}'.",
    "The {ds} '{s}' corresponds to '{d}'.",
)
OBJECT_TEMPLATES = (
    "The {ds} '{s}' stands for {o}.",
    "'{s}' means {o}.",
    "The {ds} '{s}' represents {o}.",
    "'{s}' denotes {o}.",
    "The {ds} '{s}' signifies {o}.",
)
QUERY = "Please generate the object represented by the {d} '{k}'."
QUESTION = "Which object does the {d} '{k}' stand for?"
MAX_TRIES = 1000


@attrs.frozen
class Rule:
    """``src`` stands for ``dst``: another key (``dst_is_key``) or an object phrase."""

    src: str
    dst: str
    dst_is_key: bool

    def step(self) -> str:
        """The canonical reasoning sentence for this rule."""
        return f"'{self.src}' refers to '{self.dst}'." if self.dst_is_key else \
            f"'{self.src}' stands for {self.dst}."


def key_class(key: str) -> str:
    if key.isdigit():
        return "digit"
    if key.isalpha():
        return "letter"
    return "symbol"


def rule_set_identity(rules: Sequence[Rule]) -> str:
    """Order- and phrasing-free identity of a rule set (objects by their singular words)."""
    parts = sorted(f"{r.src}>{r.dst if r.dst_is_key else ' '.join(object_words(r.dst))}"
                   for r in rules)
    return "mapping:" + ";".join(parts)


# --- generation ---------------------------------------------------------------------------
@attrs.frozen
class MappingItem:
    rules: tuple[Rule, ...]  # in prompt order
    texts: tuple[str, ...]  # each rule's sentence, same order
    starts: tuple[str, str]  # the A and B query keys
    things: tuple[Thing, Thing]


def _disjoint(a: Thing, b: Thing) -> bool:
    """Two answers a reply can tell apart: neither name is a phrase inside the other."""
    wa, wb = object_words(a.name(1)), object_words(b.name(1))
    return not (_contains(wa, wb) or _contains(wb, wa))


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


def make_rule_set(level: int, world: World, rng: random.Random
                  ) -> tuple[list[list[str]], tuple[Thing, Thing], list[Rule]]:
    """Two chains of ``level`` keys ending at two different objects, as rules (unphrased)."""
    things = tuple(rng.sample(world.objects, 2))
    while not _disjoint(*things):
        things = tuple(rng.sample(world.objects, 2))
    used: set[str] = set()
    chains: list[list[str]] = []
    for _ in range(2):
        chain = []
        for position, classes in enumerate(KEY_CLASSES[level]):
            cls = classes[0] if len(classes) == 1 else rng.choice(classes)
            if position == 0 and level == 1 and chains:
                cls = key_class(chains[0][0])  # both level-1 keys from one class, as published
            key = rng.choice(_POOLS[cls])
            while key in used:
                key = rng.choice(_POOLS[cls])
            used.add(key)
            chain.append(key)
        chains.append(chain)
    rules = [Rule(key, chain[i + 1], True) if i + 1 < len(chain) else Rule(key, thing.name(2), False)
             for chain, thing in zip(chains, things, strict=True) for i, key in enumerate(chain)]
    return chains, things, rules  # type: ignore[return-value]


def phrase(level: int, chains: list[list[str]], things: tuple[Thing, Thing], rules: list[Rule],
           rng: random.Random) -> MappingItem:
    """Word each rule with a random template; shuffle the rules at levels 2-3."""
    texts = []
    for r in rules:
        ds = DESCRIPTOR[key_class(r.src)]
        if r.dst_is_key:
            texts.append(rng.choice(KEY_TEMPLATES).format(ds=ds, s=r.src, dd=DESCRIPTOR[key_class(r.dst)], d=r.dst))
        else:
            texts.append(rng.choice(OBJECT_TEMPLATES).format(ds=ds, s=r.src, o=r.dst))
    order = list(range(len(rules)))
    if level > 1:
        rng.shuffle(order)
    return MappingItem(tuple(rules[i] for i in order), tuple(texts[i] for i in order),
                       (chains[0][0], chains[1][0]), things)


def rules_text(texts: Sequence[str]) -> str:
    return " ".join(f"Rule {i}: {t}" for i, t in enumerate(texts, 1))


def generate_items(level: int, n: int, seed: int, split: str, world: World) -> list[MappingItem]:
    rng = random.Random(f"mapping-{level}:{seed}:{split}:{world.name}")
    items = []
    for _ in range(n):
        for _attempt in range(MAX_TRIES):
            chains, things, rules = make_rule_set(level, world, rng)
            if split_of(rule_set_identity(rules)) == split:
                break
        else:  # pragma: no cover - the pool is astronomically large
            raise UserError(f"mapping-{level}: no {split} rule set found in {MAX_TRIES} tries")
        items.append(phrase(level, chains, things, rules, rng))
    return items


def to_samples(item: MappingItem, pair_id: int, level: int, split: str,
               world: str) -> list[Sample]:
    text = rules_text(item.texts)
    ident = rule_set_identity(item.rules)
    out = []
    for side, key, thing, other in (("A", item.starts[0], item.things[0], item.things[1]),
                                    ("B", item.starts[1], item.things[1], item.things[0])):
        desc = DESCRIPTOR[key_class(key)]
        prompt = f"{text} {QUERY.format(d=desc, k=key)}"
        parsed = parse_rules(prompt)  # the resolver proves the label from the printed prompt
        resolved = resolve(parsed.rules, parsed.query or "")
        if parsed.problems or not same_object(resolved.object or "", thing.name(1)):
            raise RuntimeError(f"mapping generator bug: {prompt!r} does not resolve to {thing.name(1)!r}")
        draw = article(thing.name(1))
        out.append(Sample(
            id=f"{pair_id}_{side}",
            prompt=prompt,
            answer=thing.name(1),
            question=f"{text} {QUESTION.format(d=desc, k=key)}",
            question_answer=thing.name(1),
            level=level,
            group=str(pair_id),
            target=thing.target(),
            meta={"steps": [r.step() for r in resolved.chain] + [f"So draw {draw}."],
                  "draw": draw, "distractors": [other.name(1)], "identity": ident,
                  "split": split, "world": world, "hops": len(resolved.chain), "chance": 0.5},
        ))
    return out


class MappingTask(GeneratedTask):
    family = "mapping"
    unit = "pair"

    def __init__(self, level: int, n: int = 100, seed: int = 0, split: str = "test",
                 world: str = "everyday") -> None:
        self.level = level
        self.name = f"mapping-{level}"
        self.n, self.seed, self.split, self.world = check_common(n, seed, split, world)

    def build(self) -> list[Sample]:
        items = generate_items(self.level, self.n, self.seed, self.split, self.world)
        return [s for i, it in enumerate(items)
                for s in to_samples(it, i + 1, self.level, self.split, self.world.name)]

    def image_name(self, sample: Sample) -> str:
        return f"{sample.id}.png"  # "<ID>_A.png", the published scorer's name

    def check_understanding(self, sample: Sample, reply: str) -> bool:
        return mapping_reply_ok(sample, reply)

    def consistent(self, sample: Sample, reply: str, description: str) -> bool | None:
        """The description names the one rule object the reply's final sentence names."""
        objects = sorted({r.dst for r in parse_rules(sample.prompt).rules if not r.dst_is_key})
        own = named_one(final_sentence(reply), objects)
        return None if own is None else named_one(description, objects) == own


def mapping_reply_ok(sample: Sample, reply: str) -> bool:
    """The reply's final sentence names the object and not the other chain's object.

    Working may come first ("'C' refers to '$'. '$' stands for chairs. So a chair."); only the
    final sentence is read, so a reply that lists every rule, or hedges between both objects,
    is wrong.
    """
    if not sample.question_answer:
        return False
    return reply_matches(final_sentence(reply), sample.question_answer,
                         sample.meta.get("distractors", ()))


# --- reading rules ------------------------------------------------------------------------
_RULE = re.compile(r"\bRule\s+(\d+)\s*:\s*", re.I)
_ASK = re.compile(r"(?:^|(?<=[.?!'])\s)\s*(?=(?:Please|Which|What|Generate|Draw)\b)")
_TOKEN = re.compile(r"'[^']*'|[^\s']+")
_KEY = re.compile(r"^(?:\d+|[^\w\s]{1,3}|[A-Z]{1,2})$")
_DESCRIPTORS = {"the", "a", "an", "letter", "symbol", "number", "digit", "character",
                "hashtag", "sign"}
_FILLER = _DESCRIPTORS | {
    "is", "are", "was", "be", "to", "for", "with", "by", "as", "onto", "into", "on", "at",
    "refers", "refer", "maps", "map", "mapped", "stands", "stand", "represents", "represent",
    "means", "mean", "denotes", "denote", "signifies", "signify", "symbolizes", "symbolize",
    "symbolises", "designates", "designated", "indicates", "indicate",
    "corresponds", "correspond", "relates", "related", "links", "link", "linked", "connects",
    "connected", "references", "reference", "points", "point", "equals", "equal", "equates",
    "translates", "redirects", "leads", "goes", "tied", "associated", "bonds", "bond",
    "defines", "signs", "stood", "used", "assigned", "matches", "meaning",
}
_ARTICLES = {"a", "an", "the"}


@attrs.frozen
class RuleSet:
    """What a mapping prompt says: its rules, the key it asks about, and any problems."""

    rules: tuple[Rule, ...]
    query: str | None
    problems: tuple[str, ...] = ()


def _is_key(token: str) -> bool:
    return token.startswith("'") or bool(_KEY.match(token))


def _unquote(token: str) -> str:
    return token[1:-1].strip() if token.startswith("'") and token.endswith("'") else token


def parse_rule(body: str) -> list[Rule]:
    """One rule sentence -> its rule(s); ``X stands for 8, which means cups`` gives two."""
    body = body.strip().rstrip(".").strip()
    out: list[Rule] = []
    previous: str | None = None
    for part in re.split(r",\s*which\s+", body):
        tokens = _TOKEN.findall(part.strip().rstrip(".").strip())
        if previous is None:
            # skip "The symbol"; an "a"/"A" is the key itself unless a key or descriptor follows
            described = False
            while len(tokens) > 1 and tokens[0].lower() in _DESCRIPTORS and (
                tokens[0].lower() not in ("a", "an")
                or tokens[1].lower() in _DESCRIPTORS or _is_key(tokens[1])
            ):
                described = described or tokens[0].lower() not in _ARTICLES
                tokens.pop(0)
            # after "The symbol", any single character is a key ("The symbol a represents ...")
            if not tokens or not (_is_key(tokens[0]) or (described and len(tokens[0]) == 1)):
                raise ValueError(f"no key at the start of {part.strip()!r}")
            src, tokens = _unquote(tokens.pop(0)), tokens
        else:
            src = previous
        while tokens and tokens[-1].lower() in _DESCRIPTORS - _ARTICLES:
            tokens.pop()  # "is linked to * symbol"
        if not tokens:
            raise ValueError(f"nothing follows the key in {part.strip()!r}")
        if _is_key(tokens[-1]) and len(tokens) > 1:
            dst, is_key = _unquote(tokens[-1]), True
        else:
            tail: list[str] = []
            while tokens and tokens[-1].lower() not in _FILLER and not _is_key(tokens[-1]):
                tail.insert(0, tokens.pop())
            if not tail or not tokens:
                raise ValueError(f"cannot tell the verb from the object in {part.strip()!r}")
            dst, is_key = " ".join(tail), False
        out.append(Rule(src, dst, is_key))
        previous = dst if is_key else None
    return out


def query_key(question: str) -> str | None:
    """The key a question asks about: the last quoted key, else the word after 'letter'..."""
    quoted = re.findall(r"'([^']+)'", question)
    if quoted:
        return quoted[-1].strip()
    match = re.search(r"\b(?:letter|symbol|number|digit|character)\s+(\S+)", question, re.I)
    if not match:
        return None
    key = match.group(1)
    return key[:-1] if len(key) > 1 and key[-1] in ".?" else key


def parse_rules(text: str) -> RuleSet:
    """Read ``Rule 1: ... Rule n: ... Please generate ... 'C'.`` (published or generated)."""
    pieces = _RULE.split(text)
    bodies = [pieces[i + 1] for i in range(1, len(pieces), 2)]
    problems: list[str] = []
    if not bodies:
        return RuleSet((), None, ("no 'Rule 1:' found",))
    last = bodies[-1]
    ask = _ASK.search(last)
    question = ""
    if ask:
        bodies[-1], question = last[: ask.start()], last[ask.start():]
    rules: list[Rule] = []
    for number, body in enumerate(bodies, 1):
        try:
            rules.extend(parse_rule(body))
        except ValueError as exc:
            problems.append(f"rule {number}: {exc}")
    query = query_key(question) if question else None
    if query is None:
        problems.append("the prompt asks for no key (no 'Please generate ...' sentence)")
    return RuleSet(tuple(rules), query, tuple(problems))


@attrs.frozen
class Resolution:
    """Where a key leads: the object (None when the chain breaks), the rules used, why not."""

    object: str | None
    chain: tuple[Rule, ...]
    problem: str | None = None


def resolve(rules: Sequence[Rule], key: str, max_hops: int = 16) -> Resolution:
    """Follow ``key`` through ``rules`` to an object; undefined, ambiguous or cyclic chains fail."""
    by_src: dict[str, list[Rule]] = {}
    for r in rules:
        by_src.setdefault(r.src, []).append(r)
    chain: list[Rule] = []
    seen = {key}
    current = key
    for _ in range(max_hops):
        options = by_src.get(current, [])
        distinct = {(r.dst, r.dst_is_key) for r in options}
        if not options:
            return Resolution(None, tuple(chain), f"'{current}' is not defined by any rule")
        if len(distinct) > 1:
            return Resolution(None, tuple(chain), f"'{current}' has {len(distinct)} conflicting rules")
        rule = options[0]
        chain.append(rule)
        if not rule.dst_is_key:
            return Resolution(rule.dst, tuple(chain))
        if rule.dst in seen:
            return Resolution(None, tuple(chain), f"the chain from '{key}' loops at '{rule.dst}'")
        seen.add(rule.dst)
        current = rule.dst
    return Resolution(None, tuple(chain), f"the chain from '{key}' is longer than {max_hops} rules")


def object_words(phrase: str) -> list[str]:
    """Comparable words of an object phrase: lower-case, singular, no articles."""
    return list(_object_words(phrase))


@functools.lru_cache(maxsize=8192)
def _object_words(phrase: str) -> tuple[str, ...]:
    return tuple(w for w in words(phrase) if w not in _ARTICLES)


def _stems(word: str) -> set[str]:
    """Every singular a plural-looking word could come from ('shoes' -> shoe, sho)."""
    out = {word}
    if word.endswith("s") and len(word) > 2:
        out.add(word[:-1])
    if word.endswith("es") and len(word) > 3:
        out.add(word[:-2])
    if word.endswith("ies") and len(word) > 4:
        out.add(word[:-3] + "y")
    if word.endswith("ves") and len(word) > 4:
        out.update({word[:-3] + "f", word[:-3] + "fe"})
    return out


def same_object(a: str, b: str) -> bool:
    """Do two object phrases name the same thing, singular or plural ('1 cookie'/'cookies')?"""
    wa = [w for w in re.findall(r"[a-z0-9]+", a.lower()) if w not in _ARTICLES]
    wb = [w for w in re.findall(r"[a-z0-9]+", b.lower()) if w not in _ARTICLES]
    return bool(wa) and len(wa) == len(wb) and all(_stems(x) & _stems(y) for x, y in zip(wa, wb, strict=True))


#: Labels that say "there is no answer" (published mapping2 uses them).
NON_ANSWERS = frozenset({"undefined", "n/a", "na", "none", "unknown", "null", "nothing"})


def is_non_answer(label: str) -> bool:
    return label.strip().strip(".").lower() in NON_ANSWERS
