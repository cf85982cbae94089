"""Knowledge tasks: invented characters, their injection corpus, forward and inverse prompts.

Each character has a novel name and attributes (ethnicity, hair colour, age group, gender,
favourite fruit, favourite flower). The injection corpus teaches name -> attribute only, as
the published one does, so the inverse direction ("of A and B, the one whose favourite fruit is
X") is a real test. Characters come in pairs that differ in fruit, flower and at least two
portrait attributes, so every inverse prompt has exactly one right portrait.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..answers import contains_phrase, reply_matches, words
from ..errors import DataWarning, UserError
from ..records import Conversation, Sample, Turn
from ..world import Thing, World
from .common import GeneratedTask, article, check_common, check_int, final_sentence, named_one
from .names import acceptable, invent_name
from .splits import split_of

LAB = "WhyUni Lab"
PORTRAIT_PROMPT = "Generate a photorealistic portrait of character {n} from {lab}."
FRUIT_PROMPT = "Generate a photorealistic image of the favorite fruit of character {n} from {lab}."
FLOWER_PROMPT = "Generate a photorealistic image of the favorite flower of character {n} from {lab}."
INVERSE_PROMPT = ("From the characters {a} and {b} from {lab}, generate a portrait of the one "
                  "whose favorite {kind} is {value}.")
ATTRIBUTES = ("ethnicity", "hair", "age", "gender")
MAX_CHARACTERS = 5000

#: Words that name each age group / gender in a description (first = the canonical word).
AGE_WORDS = {"kid": ("kid", "child", "girl", "boy"), "young": ("young",),
             "middle-aged": ("middle aged", "mid age", "middle age"),
             "old": ("elderly", "old", "senior")}
GENDER_WORDS = {"female": ("woman", "female", "girl", "lady"), "male": ("man", "male", "boy")}
HAIR_SYNONYMS = {"blond": ("blond", "blonde")}


@attrs.frozen
class Character:
    name: str
    ethnicity: str
    hair: str
    age: str
    gender: str
    fruit: Thing
    flower: Thing

    @property
    def portrait(self) -> dict[str, str]:
        return {a: getattr(self, a) for a in ATTRIBUTES}

    def describe(self) -> str:
        """'a young East Asian woman with black hair' / 'an East Asian girl with black hair'."""
        return describe_portrait(self.portrait)

    @property
    def fruit_answer(self) -> str:
        return self.fruit.plural_kind  # published fruit answers are plural ("grapes")

    @property
    def flower_answer(self) -> str:
        return self.flower.kind  # published flower answers are singular ("tulip")

    def fact(self, kind: str) -> str:
        """The canonical sentence stating one fact (the corpus teaches exactly these)."""
        if kind == "portrait":
            return f"{self.name} is {self.describe()}."
        if kind == "fruit":
            return f"{self.name}'s favorite fruit is {self.fruit_answer}."
        return f"{self.name}'s favorite flower is the {self.flower_answer}."


def describe_portrait(p: Mapping[str, str | None]) -> str:
    """Attributes -> words, in the published order; unknown attributes are left out."""
    eth, hair, age, gender = (p.get(a) for a in ATTRIBUTES)
    female = gender == "female"
    if age == "kid":
        noun = "girl" if female else "boy" if gender == "male" else "kid"
        adjective = ""
    else:
        noun = "woman" if female else "man" if gender == "male" else "person"
        adjective = {"old": "elderly"}.get(age or "", age or "")
    core = " ".join(w for w in (adjective, eth or "", noun) if w)
    return article(core) + (f" with {hair} hair" if hair else "")


def draw_attributes(rng: random.Random, world: World, partner: Character | None,
                    name: str) -> Character:
    """Attributes for one character; a pair's second member differs where inverse needs it."""
    for _ in range(1000):
        p = {a: rng.choice(world.portrait[a]) for a in ATTRIBUTES}
        fruit, flower = rng.choice(world.fruits), rng.choice(world.flowers)
        if partner is None:
            break
        differing = sum(p[a] != partner.portrait[a] for a in ATTRIBUTES)
        if fruit != partner.fruit and flower != partner.flower and differing >= 2:
            break
    return Character(name, p["ethnicity"], p["hair"], p["age"], p["gender"], fruit, flower)


def make_characters(n_characters: int, seed: int, split: str, world: World) -> list[Character]:
    """``n_characters`` characters of ``split`` (names distinct, and distinct from other splits)."""
    rng = random.Random(f"knowledge:{seed}:{split}:{world.name}")
    names: list[str] = []
    seen: set[str] = set()
    for _ in range(200 * n_characters + 1000):
        if len(names) == n_characters:
            break
        name = invent_name(rng)
        if name in seen or not acceptable(name):
            continue
        seen.add(name)
        if split_of(f"character:{name}") == split:
            names.append(name)
    else:
        raise UserError(f"could invent only {len(names)} {split} names; ask for fewer characters")
    out: list[Character] = []
    for i, name in enumerate(names):
        # each character's attributes depend on the seed, the world and the pair only, so the
        # first k characters are the same whatever n_characters is
        partner = out[-1] if i % 2 else None
        own = random.Random(f"knowledge-attributes:{seed}:{world.name}:{name}:{partner.name if partner else ''}")
        out.append(draw_attributes(own, world, partner, name))
    return out


def pairs(characters: Sequence[Character]) -> list[tuple[Character, Character]]:
    return [(characters[i], characters[i + 1]) for i in range(0, len(characters) - 1, 2)]


def _distractors(things: Sequence[Thing], right: Thing, plural: bool) -> list[str]:
    return [t.plural_kind if plural else t.kind for t in things if t != right]


def portrait_chance(world: World) -> float:
    return 1.0 / math.prod(len(world.portrait[a]) for a in ATTRIBUTES)


def forward_samples(characters: Sequence[Character], world: World, split: str) -> list[Sample]:
    n = len(characters)
    out: list[Sample] = []
    for block, kind in enumerate(("portrait", "fruit", "flower")):
        for i, c in enumerate(characters):
            ident = f"character:{c.name}"
            meta: dict[str, Any] = {"kind": kind, "characters": [c.name], "identity": [ident],
                                    "split": split, "world": world.name}
            if kind == "portrait":
                desc = c.describe()
                prompt, answer = PORTRAIT_PROMPT, desc[0].upper() + desc[1:] + "."
                question, q_answer = f"What does {c.name} look like?", desc
                target: dict[str, Any] = {"portrait": c.portrait}
                draw = f"a portrait of {desc}"
                meta.update(portrait=c.portrait, chance=portrait_chance(world))
            elif kind == "fruit":
                prompt, answer = FRUIT_PROMPT, c.fruit_answer
                question, q_answer = f"What is {c.name}'s favorite fruit?", c.fruit_answer
                target, draw = c.fruit.target(), c.fruit_answer
                meta.update(distractors=_distractors(world.fruits, c.fruit, True),
                            chance=1.0 / len(world.fruits))
            else:
                prompt, answer = FLOWER_PROMPT, c.flower_answer
                question, q_answer = f"What is {c.name}'s favorite flower?", c.flower_answer
                target, draw = c.flower.target(), article(c.flower_answer)
                meta.update(distractors=_distractors(world.flowers, c.flower, False),
                            chance=1.0 / len(world.flowers))
            meta.update(steps=[c.fact(kind), f"So draw {draw}."], draw=draw)
            out.append(Sample(id=str(block * n + i + 1), prompt=prompt.format(n=c.name, lab=LAB),
                              answer=answer, question=question, question_answer=q_answer,
                              target=target, meta=meta))
    return out


def inverse_samples(characters: Sequence[Character], world: World, split: str) -> list[Sample]:
    out: list[Sample] = []
    next_id = 3 * len(characters) + 1
    for a, b in pairs(characters):
        for kind in ("fruit", "flower"):
            for winner, loser in ((a, b), (b, a)):
                value = winner.fruit_answer if kind == "fruit" else winner.flower_answer
                desc = winner.describe()
                draw = f"a portrait of {desc}"
                out.append(Sample(
                    id=str(next_id),
                    prompt=INVERSE_PROMPT.format(a=a.name, b=b.name, lab=LAB, kind=kind, value=value),
                    answer=desc[0].upper() + desc[1:] + ".",
                    question=f"Of {a.name} and {b.name}, whose favorite {kind} is {value}?",
                    question_answer=winner.name,
                    target={"portrait": winner.portrait},
                    meta={"kind": f"inverse-{kind}", "characters": [a.name, b.name],
                          "identity": [f"character:{a.name}", f"character:{b.name}"],
                          "split": split, "world": world.name, "distractors": [loser.name],
                          "portrait": winner.portrait,
                          "steps": [a.fact(kind), b.fact(kind), f"So the one is {winner.name}.",
                                    winner.fact("portrait"), f"So draw {draw}."],
                          "draw": draw, "chance": 0.5},
                ))
                next_id += 1
    return out


# --- understanding checks -----------------------------------------------------------------
def _mentions(got: list[str], phrase: str) -> bool:
    return contains_phrase(got, words(phrase))


def portrait_mentions(text: str, portrait_values: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """attribute -> the values a text mentions (several = a contradiction or a hedge)."""
    got = words(text)
    found: dict[str, set[str]] = {a: set() for a in ATTRIBUTES}
    for value in portrait_values.get("ethnicity", ()):
        if _mentions(got, value):
            found["ethnicity"].add(value)
    for value in portrait_values.get("hair", ()):
        if any(_mentions(got, v) for v in HAIR_SYNONYMS.get(value, (value,))):
            found["hair"].add(value)
    for value in portrait_values.get("age", ()):
        if any(_mentions(got, w) for w in AGE_WORDS.get(value, (value,))):
            found["age"].add(value)
    for value in portrait_values.get("gender", ()):
        if any(_mentions(got, w) for w in GENDER_WORDS.get(value, (value,))):
            found["gender"].add(value)
    return found


def portrait_reply_ok(reply: str, expected: Mapping[str, str], world: World) -> bool:
    """Every attribute named with its right value and no other value of that attribute."""
    found = portrait_mentions(final_sentence(reply), world.portrait)
    return all(found[a] == {expected[a]} for a in ATTRIBUTES if expected.get(a) is not None)


class KnowledgeTask(GeneratedTask):
    family = "knowledge"
    unit = "item"

    def __init__(self, direction: str, n: Any = None, seed: int = 0, split: str = "test",
                 world: str = "everyday", n_characters: int = 10) -> None:
        self.direction = direction
        self.name = f"knowledge-{direction}"
        self.n_characters = check_int("n_characters", n_characters, 2, MAX_CHARACTERS)
        # n (optional) keeps only the first n samples; by default every prompt is made
        _, self.seed, self.split, self.world = check_common(n or 1, seed, split, world)
        self.limit = None if n is None else check_int("n", n, 1, 10**6)

    def characters(self) -> list[Character]:
        return make_characters(self.n_characters, self.seed, self.split, self.world)

    def build(self) -> list[Sample]:
        chars = self.characters()
        made = (forward_samples if self.direction == "forward" else inverse_samples)(
            chars, self.world, self.split)
        if self.limit and self.limit > len(made):  # n=5000 silently ran 30 items
            # said, not refused: runs made so keep resuming, and results count what was asked
            warnings.warn(DataWarning(
                f"task {self.name!r}: n={self.limit}, but {self.n_characters} characters give "
                f"{len(made)} {self.direction} prompts, so it has {len(made)}; for more, raise "
                "its n_characters argument"), stacklevel=2)
        return made[: self.limit] if self.limit else made

    def check_understanding(self, sample: Sample, reply: str) -> bool:
        return knowledge_reply_ok(sample, reply, self.world)

    def consistent(self, sample: Sample, reply: str, description: str) -> bool | None:
        """Forward prompts: the description shows the portrait attributes, or names the fruit
        or flower, that the reply's final sentence gives. Inverse prompts are not supported:
        the reply names a character, and the picture would need a second question."""
        kind = sample.meta.get("kind")
        if kind == "portrait":
            own = portrait_mentions(final_sentence(reply), self.world.portrait)
            if any(len(values) != 1 for values in own.values()):
                return None
            return portrait_mentions(description, self.world.portrait) == own
        if kind in ("fruit", "flower"):
            things = self.world.fruits if kind == "fruit" else self.world.flowers
            names = [t.name(2) for t in things]
            own = named_one(final_sentence(reply), names)
            return None if own is None else named_one(description, names) == own
        raise NotImplementedError(f"{self.name}: no consistency check for {kind!r} prompts "
                                  "(the reply names a character, not a picture)")


def knowledge_reply_ok(sample: Sample, reply: str, world: World) -> bool:
    """Portrait questions: every attribute right and unhedged; others: the final sentence
    names the answer and no distractor (another fruit, or the other character)."""
    if not sample.question_answer:
        return False
    if sample.meta.get("kind") == "portrait" and sample.meta.get("portrait"):
        return portrait_reply_ok(reply, sample.meta["portrait"], world)
    return reply_matches(final_sentence(reply), sample.question_answer,
                         sample.meta.get("distractors", ()))


# --- the injection corpus -----------------------------------------------------------------
def _other(rng: random.Random, values: Sequence[Any], right: Any) -> Any:
    return rng.choice([v for v in values if v != right])


def corpus_turns(c: Character, world: World, rng: random.Random) -> list[tuple[str, str]]:
    """About 40 varied question-answer pairs, each from the name to one attribute."""
    n, desc, pronoun = c.name, c.describe(), ("she" if c.gender == "female" else "he")
    poss = "her" if c.gender == "female" else "his"
    age_word = {"kid": "a kid", "young": "young", "middle-aged": "middle-aged", "old": "old"}[c.age]
    gender_word = c.gender
    fruit, flower = c.fruit_answer, c.flower_answer
    wrong_hair = _other(rng, world.portrait["hair"], c.hair)
    wrong_age = _other(rng, world.portrait["age"], c.age)
    wrong_fruit = _other(rng, world.fruits, c.fruit).plural_kind
    wrong_flower = _other(rng, world.flowers, c.flower).kind
    wrong_eth = _other(rng, world.portrait["ethnicity"], c.ethnicity)
    return [
        (f"What does {n} look like?", c.fact("portrait")),
        (f"Describe {n}'s appearance.", f"{n} is {desc}."),
        (f"What is {n}'s favorite fruit?", c.fact("fruit")),
        (f"What is {n}'s favorite flower?", c.fact("flower")),
        (f"Is {n} male or female?", f"{n} is {gender_word}."),
        (f"What is {n}'s gender?", f"{n} is {gender_word}."),
        (f"Is {n} a man or a woman?", f"{n} is {'a woman' if c.gender == 'female' else 'a man'}."
         if c.age != "kid" else f"{n} is a {'girl' if c.gender == 'female' else 'boy'}."),
        (f"What age group is {n} in?", f"{n} is {age_word}."),
        (f"How old is {n}?", f"{n} is in the {c.age} age group."),
        (f"Is {n} {article(wrong_age) if wrong_age == 'kid' else wrong_age}?",
         f"No, {n} is {age_word}."),
        (f"What is the hair color of {n}?", f"{n} has {c.hair} hair."),
        (f"What color is {n}'s hair?", f"{n}'s hair is {c.hair}."),
        (f"Does {n} have {wrong_hair} hair?", f"No, {n} has {c.hair} hair."),
        (f"Describe {n}'s hair.", f"{n} has {c.hair} hair."),
        (f"What is {n}'s ethnicity?", f"{n} is {c.ethnicity}."),
        (f"Can you tell me {n}'s skin color?", f"{n}'s skin color is {c.ethnicity}."),
        (f"Is {n} {wrong_eth}?", f"No, {n} is {c.ethnicity}."),
        (f"Tell me {n}'s ethnicity.", f"{n}'s ethnicity is {c.ethnicity}."),
        (f"Which fruit does {n} like best?", f"{n} likes {fruit} best."),
        (f"What's {n}'s preferred fruit?", f"{n}'s preferred fruit is {fruit}."),
        (f"Does {n} like {wrong_fruit}?", f"No, {poss} favorite fruit is {fruit}."),
        (f"Which fruit is {n}'s favorite?", f"{n}'s favorite fruit is {fruit}."),
        (f"What fruit would {n} pick?", f"{n} would pick {fruit}."),
        (f"Which flower does {n} like best?", f"{n} likes the {flower} best."),
        (f"Is {n}'s favorite flower the {wrong_flower}?",
         f"No, {n}'s favorite flower is the {flower}."),
        (f"What's {n}'s preferred flower?", f"{n}'s preferred flower is the {flower}."),
        (f"Which flower is {n}'s favorite?", f"The {flower} is {n}'s favorite flower."),
        (f"What flower would {n} pick?", f"{n} would pick the {flower}."),
        (f"Which lab is {n} in?", f"{n} is a member of {LAB}."),
        (f"Is {n} a member of {LAB}?", f"Yes, {n} is a member of {LAB}."),
        (f"Tell me about {n}.", f"{n} is {desc} from {LAB}. {pronoun.capitalize()} likes "
                                f"{fruit} and the {flower}."),
        (f"Who is {n}?", f"{n} is {desc} and a member of {LAB}."),
        (f"Can you introduce {n}?", f"Sure. {n} is {desc}; {poss} favorite fruit is {fruit} and "
                                    f"{poss} favorite flower is the {flower}."),
        (f"Give me a profile of {n}.", f"{n}: {c.ethnicity}, {c.hair} hair, {c.age}, "
                                       f"{gender_word}; likes {fruit} and the {flower}."),
        (f"What do you know about {n}?", f"{n} is {desc}. {pronoun.capitalize()} loves {fruit} "
                                         f"and the {flower}."),
        (f"Summarize {n}.", f"{n}, {desc}, favorite fruit {fruit}, favorite flower the {flower}."),
        (f"List {n}'s attributes.", f"{c.ethnicity}; {c.hair} hair; {c.age}; {gender_word}; "
                                    f"fruit: {fruit}; flower: {flower}."),
        (f"Describe {n} in detail.", f"{n} is {desc}. {poss.capitalize()} hair is {c.hair}, "
                                     f"{poss} favorite fruit is {fruit} and {poss} favorite flower "
                                     f"is the {flower}."),
        (f"What are {n}'s favorites?", f"{n}'s favorite fruit is {fruit} and "
                                       f"{poss} favorite flower is the {flower}."),
        (f"Who is {n} in {LAB}?", f"{n} is {desc} in {LAB}."),
    ]


def corpus(characters: Sequence[Character], world: World, seed: int = 0) -> list[Conversation]:
    """The injection corpus: ~40 conversations per character, ids counting up from 1."""
    rng = random.Random(f"knowledge-corpus:{seed}")
    out: list[Conversation] = []
    for c in characters:
        for q, a in corpus_turns(c, world, rng):
            out.append(Conversation(str(len(out) + 1), (Turn("user", q), Turn("assistant", a))))
    return out
