"""What the sandbox model is pretrained on, built from the glyph world and the task suite.

Two streams, kept apart on purpose:

* **Generation** (the flow loss) sees **direct prompts only** — "Draw 3 red stars.", "Draw a
  portrait of a young East Asian woman with black hair." — never a reasoning prompt, a
  character name or a mapping rule. Whatever the generator later does with those must come
  through the understanding side. Some direct prompts arrive in the think format with a plan
  that only restates the picture ("<think> So draw 3 red stars. </think>"), so the queries learn
  to read a plan at the end of a longer context; the plan never contains reasoning (with
  ``think_filler``, unrelated arithmetic facts may precede it: they say nothing about the
  picture, so the generator learns to read past them, not to compute).
* **Understanding** (the text loss) learns the world's language: what a direct prompt asks
  for, arithmetic facts, worked answers and think traces for the TRAIN split of every task,
  the train-split characters (test characters arrive only through knowledge injection),
  describing images, and the self-filter format STARS uses.

Every list is built from a seed; the same seed gives the same corpus on any machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import attrs
from unisandbox.judges.selfjudge import filter_prompt
from unisandbox.records import Sample
from unisandbox.tasks import knowledge as K
from unisandbox.tasks.common import article
from unisandbox.world import get_world
from unisandbox.world.glyph import COUNTS

from ..tokenization import END_THINK, THINK, pre_tokenize

TASKS = ("math-1", "math-2", "math-3", "mapping-1", "mapping-2", "mapping-3")
#: the categories ``text_examples()`` always builds, and the drills built on demand (``drills``)
TEXT_CATEGORIES = ("ask", "facts", "math", "mapping", "think", "knowledge", "describe", "filter")
DRILLS = ("copy", "recall", "lookup", "lookup-N (N = 2 ... 12)", "implicit", "implicit-ask")
#: direct-prompt templates the generator trains on; ``HELD_OUT_TEMPLATE`` is for evaluation only
TEMPLATES = ("Draw {p}.", "Generate {p}.", "Show {p}.", "An image of {p}.", "Please draw {p}.",
             "Make a picture of {p}.")
HELD_OUT_TEMPLATE = "Create an image showing {p}."
ASK_WHAT = "What should the picture show?"
#: user turns of think-format generation examples that leave the picture to the plan
GENERIC_PROMPTS = ("Draw the picture you plan.", "Make the picture.", "Draw it.",
                   "Generate the image.")
DESCRIBE_QUESTIONS = ("What does the image show?", "Describe the image.", "What is in the picture?")


@attrs.frozen
class TextExample:
    """One supervised text turn; ``image`` is a glyph target rendered for the vision side."""

    category: str
    user: str
    answer: str
    image: Mapping[str, Any] | None = None
    layout: str = "canonical"


def phrase(target: Mapping[str, Any], *, bare: bool = False, digit_one: bool = False) -> str:
    """The words for a glyph target: '3 red stars', 'a red star' (or '1 red star'), 'grapes',
    'a portrait of ...'. Tasks write "draw 1 red star" as well as "draw a red star"."""
    world = get_world("glyph")
    if "portrait" in target:
        return "a portrait of " + K.describe_portrait(target["portrait"])
    thing = world.thing(target["kind"], target.get("colour"))
    count = target.get("count", 1)
    if bare:
        return thing.name(2)
    if count == 1:
        return f"1 {thing.name(1)}" if digit_one else article(thing.name(1))
    return f"{count} {thing.name(count)}"


def direct_targets(world_name: str = "glyph") -> list[dict[str, Any]]:
    """Every picture the generator can be asked for directly."""
    world = get_world(world_name)
    out: list[dict[str, Any]] = [t.target(n) for t in world.objects for n in COUNTS]
    out += [t.target(n) for t in (*world.fruits, *world.flowers) for n in COUNTS]
    attrs_ = world.portrait
    out += [{"portrait": {"ethnicity": e, "hair": h, "age": a, "gender": g}}
            for e in attrs_["ethnicity"] for h in attrs_["hair"] for a in attrs_["age"]
            for g in attrs_["gender"]]
    return out


def target_key(target: Mapping[str, Any]) -> str:
    if "portrait" in target:
        return "portrait:" + ",".join(target["portrait"][k] for k in sorted(target["portrait"]))
    return f"{target['kind']}:{target.get('colour')}:{target.get('count', 1)}"


@attrs.define
class SandboxCorpus:
    """The pretraining corpus. ``held_out`` direct targets are never shown to the generator.

    The defaults are the plain corpus (the one the tokenizer's vocabulary comes from); the
    recipe (``pretrain.Recipe``, via ``build_corpus``) turns its options on.
    """

    seed: int = 0
    n_train: int = 600  # train-split items per reasoning task
    #: per-task multipliers of ``n_train`` ({"math-3": 6.0}): a level with few distinct items
    #: (math-1 has 189 expressions) is learned by rote long before one with thousands is worked
    task_scale: Mapping[str, float] = attrs.field(factory=dict)
    n_characters: int = 24  # train-split characters the understanding side learns
    held_out_share: float = 0.1
    think_format_share: float = 0.3
    #: share of think-format examples whose plan follows 1-3 unrelated arithmetic facts (as a
    #: model's reasoning precedes its plan), so the queries learn to read the plan past it
    think_filler: float = 0.0
    #: the train characters' think traces in the ``knowledge`` category (a few hundred
    #: examples, each seen often) instead of among the tens of thousands of ``think`` traces
    traces_in_knowledge: bool = False
    #: self-filter answers reason first, then say what the picture should show and what it
    #: shows side by side, then check each attribute ("4 / 3 : no ."): the verdict is a
    #: conjunction of comparisons at a fixed distance, not of two sentences far apart
    filter_compare: bool = False

    @cached_property
    def rng(self) -> random.Random:
        return random.Random(f"sandbox-corpus:{self.seed}")

    # --- generation stream -------------------------------------------------------------
    @cached_property
    def split_targets(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        targets = direct_targets()
        rng = random.Random(f"held-out:{self.seed}")
        keys = sorted(target_key(t) for t in targets)
        held = set(rng.sample(keys, round(self.held_out_share * len(keys))))
        return ([t for t in targets if target_key(t) not in held],
                [t for t in targets if target_key(t) in held])

    @property
    def train_targets(self) -> list[dict[str, Any]]:
        return self.split_targets[0]

    @property
    def held_out_targets(self) -> list[dict[str, Any]]:
        return self.split_targets[1]

    def direct_prompt(self, target: Mapping[str, Any], rng: random.Random,
                      template: str | None = None) -> str:
        return (template or rng.choice(TEMPLATES)).format(p=self.varied_phrase(target, rng))

    @staticmethod
    def varied_phrase(target: Mapping[str, Any], rng: random.Random) -> str:
        """One of the ways tasks name ``target`` ('a red star', '1 red star', 'grapes')."""
        single = "kind" in target and target.get("count", 1) == 1
        bare = single and "colour" not in target and rng.random() < 0.3
        return phrase(target, bare=bare, digit_one=single and rng.random() < 0.5)

    def generation_example(self, rng: random.Random) -> tuple[str, str | None, dict[str, Any]]:
        """(prompt, plan or None, target): a direct prompt, sometimes in the think format.

        In the think format the plan restates the picture. The user turn is the same direct
        prompt, a generic one, or a direct prompt for ANOTHER picture: the plan at the end of
        the context decides, so the queries learn to read the plan over earlier words (the
        model's own reasoning, at test time, sits between the prompt and the plan).
        """
        target = rng.choice(self.train_targets)
        prompt = self.direct_prompt(target, rng)
        if rng.random() < self.think_format_share:
            plan = f"So draw {self.varied_phrase(target, rng)}."
            if self.think_filler and rng.random() < self.think_filler:
                plan = " ".join([*rng.sample(self.arithmetic_facts, rng.randint(1, 3)), plan])
            kind = rng.randrange(3)
            if kind == 1:
                prompt = rng.choice(GENERIC_PROMPTS)
            elif kind == 2:
                prompt = self.direct_prompt(rng.choice(self.train_targets), rng)
            return prompt, plan, target
        return prompt, None, target

    # --- understanding stream ----------------------------------------------------------
    @cached_property
    def train_samples(self) -> dict[str, list[Sample]]:
        from unisandbox.factories import build
        from unisandbox.registry import get_registry

        reg = get_registry()
        out = {}
        for name in TASKS:
            out[name] = list(build(reg.task(name), {"world": "glyph", "split": "train",
                                                    "n": self.items(name),
                                                    "seed": self.seed}).samples())
        return out

    def items(self, task: str) -> int:
        """Train items of ``task``: ``n_train`` times its ``task_scale`` (at least 1)."""
        return max(1, round(self.n_train * self.task_scale.get(task, 1.0)))

    @cached_property
    def characters(self) -> list[K.Character]:
        return K.make_characters(self.n_characters, self.seed, "train", get_world("glyph"))

    @cached_property
    def knowledge_samples(self) -> list[Sample]:
        world = get_world("glyph")
        return (K.forward_samples(self.characters, world, "train")
                + K.inverse_samples(self.characters, world, "train"))

    @cached_property
    def arithmetic_facts(self) -> list[str]:
        """Every one-operation fact the math steps use ('17 % 3 = 2.'), from every split.

        Facts are knowledge, not items: a split keeps whole expressions apart, and the
        understanding side knowing that 7 - 4 = 3 is what makes U meaningful at all.
        """
        from unisandbox.factories import build
        from unisandbox.registry import get_registry

        facts: set[str] = set()
        reg = get_registry()
        for split in ("train", "dev", "test"):
            for name in ("math-1", "math-2", "math-3"):
                for s in build(reg.task(name), {"world": "glyph", "split": split, "n": 1500,
                                                "seed": self.seed}).samples():
                    facts.update(step for step in s.meta["steps"] if "=" in step)
        return sorted(facts)

    def text_examples(self) -> dict[str, list[TextExample]]:
        """Every category's examples (images are targets, rendered when batched)."""
        cats: dict[str, list[TextExample]] = {
            "ask": self._ask(), "facts": self._facts(), "math": [], "mapping": [],
            "think": [], "knowledge": self._knowledge(), "describe": self._describe(),
            "filter": self._filter(),
        }
        for name, samples in self.train_samples.items():
            family = "math" if name.startswith("math") else "mapping"
            for s in samples:
                cats[family].append(TextExample(family, s.question, worked_answer(s, family)))
                cats["think"].append(TextExample("think", s.prompt, think_answer(s)))
        traces = "knowledge" if self.traces_in_knowledge else "think"
        for s in self.knowledge_samples:
            cats[traces].append(TextExample(traces, s.prompt, think_answer(s)))
            cats["knowledge"].append(TextExample("knowledge", s.question,
                                                 worked_answer(s, "knowledge")))
        return cats

    def copy_drills(self, cats: Mapping[str, list[TextExample]], n: int = 20000) -> list[TextExample]:
        """Copy drills: "Say: 7 red ' c ' means ..." -> the same words, drawn at random.

        Random word strings cannot be memorised, so the only way to lower their loss is to
        read tokens back out of the context (induction), the skill the mapping rules and the
        operands of longer expressions need. Their words are the corpus's, so the vocabulary
        is the same with or without them. Built from ``cats`` (``text_examples()``) only when asked for: most recipes don't.
        docs/sandbox-model.md has what they did and did not do.
        """
        words = sorted(pre_tokenize(e.user for c in ("ask", "math", "mapping") for e in cats[c]))
        rng = random.Random(f"copy:{self.seed}")
        out = []
        for _ in range(n):
            seq = " ".join(rng.choice(words) for _ in range(rng.randint(4, 16)))
            out.append(TextExample("copy", f"Say: {seq}", seq))
        return out

    def lookup_drills(self, entries: tuple[int, int] = (2, 6), n: int = 20000) -> list[TextExample]:
        """Dense lookups on fresh random lists, each key answered as it was listed:
        "'K' green stars . '3' red rings . What do '3' and 'K' stand for?" -> "'3' red rings .
        'K' green stars ." (``entries``: the list lengths, LOW-HIGH).

        Keys and objects are drawn anew for every list, so nothing can be memorised: the loss
        falls only once the LM binds each key to what follows it in its own entry — the lookup
        a mapping rule needs. The binding forms as a phase change, and only in a curriculum
        over list length (2, then 3, then 4 entries, then mixed): docs/sandbox-model.md.
        """
        from unisandbox.tasks.mapping import DIGITS, LETTERS, SYMBOLS

        keys = [*LETTERS, *DIGITS, *SYMBOLS]
        objects = sorted({o.name(2) for o in get_world("glyph").objects})
        rng = random.Random(f"lookup:{entries}:{self.seed}")
        out = []
        for _ in range(n):
            chosen = rng.sample(keys, rng.randint(*entries))
            values = [rng.choice(objects) for _ in chosen]
            order = rng.sample(range(len(chosen)), len(chosen))
            asked = [f"'{chosen[i]}'" for i in order]
            listing = " ".join(f"'{k}' {v} ." for k, v in zip(chosen, values, strict=True))
            out.append(TextExample("lookup", f"{listing} What do {', '.join(asked[:-1])} and {asked[-1]} stand for?",
                                   " ".join(f"'{chosen[i]}' {values[i]} ." for i in order)))
        return out

    def recall_drills(self, n_sets: int = 10000) -> list[TextExample]:
        """Rule recall: a train rule set, then "What do 'Q', '3' and 'H' stand for?" answered
        with every rule in the order asked ("'Q' refers to '3'. '3' stands for red rings. ...").

        Every rule asked, not one: a single question gives the LM one target per sequence and
        lets it answer from one of the chains without matching the key (the mapping items'
        failure, docs/sandbox-model.md). ``n_sets`` fresh TRAIN rule sets per mapping level.
        """
        from unisandbox.factories import build
        from unisandbox.registry import get_registry
        from unisandbox.tasks.mapping import parse_rules

        rng, seen, out = random.Random(f"recall:{self.seed}"), set(), []
        reg = get_registry()
        for name in TASKS[3:]:
            task = build(reg.task(name), {"world": "glyph", "split": "train", "n": n_sets,
                                          "seed": self.seed + 1})
            for s in task.samples():
                if s.meta["identity"] in seen:  # both keys of a rule set share it
                    continue
                seen.add(s.meta["identity"])
                out.append(recall_drill(s.question, list(parse_rules(s.prompt).rules), rng))
        return out

    def implicit_drills(self, ask: bool = False) -> list[TextExample]:
        """The train math items' generation prompts answered at once, without working:
        "Draw as many orange hearts as 2 + 3." -> "5 orange hearts." (``ask``: the prompt
        followed by "What should the picture show?", as the ``ask`` category asks it).

        Worked answers teach the LM to compute where it writes "=", so for a raw prompt its
        states hold the object but not the count (``bench/count_probe.py``: at chance at every
        layer), and a generator that reads those states (STARS stage III) has nothing to learn
        the count from. These teach it to compute the count in place: without ``ask`` at the
        very position where the queries start. Text only: the generator still never trains on
        a reasoning prompt. Train split only (no test expression appears in the corpus).
        """
        question = f" {ASK_WHAT}" if ask else ""
        category = "implicit-ask" if ask else "implicit"
        return [TextExample(category, f"{s.prompt}{question}", phrase(s.target) + ".")
                for name in TASKS[:3] for s in self.train_samples[name]]

    def drills(self, name: str, cats: Mapping[str, list[TextExample]]) -> list[TextExample]:
        """The drill category ``name`` ("copy", "recall", "lookup" for 2-6 entries, "lookup-N"
        for exactly N): built only for a recipe that uses it."""
        if name == "copy":
            return self.copy_drills(cats)
        if name == "recall":
            return self.recall_drills()
        if name == "lookup":
            return self.lookup_drills()
        if name in ("implicit", "implicit-ask"):
            return self.implicit_drills(ask=name == "implicit-ask")
        if name.startswith("lookup-") and name[7:].isdigit() and 2 <= int(name[7:]) <= 12:
            return [attrs.evolve(e, category=name) for e in self.lookup_drills((int(name[7:]),) * 2)]
        raise ValueError(f"unknown text category {name!r}: choose from {', '.join(TEXT_CATEGORIES)}, "
                         f"or the drills {', '.join(DRILLS)}")

    def _ask(self) -> list[TextExample]:
        rng = random.Random(f"ask:{self.seed}")
        return [TextExample("ask", f"{self.direct_prompt(t, rng)} {ASK_WHAT}", phrase(t) + ".")
                for t in direct_targets() for _ in range(2)]

    def _facts(self) -> list[TextExample]:
        out = []
        for fact in self.arithmetic_facts:
            lhs, rhs = fact.rstrip(".").split(" = ")
            out.append(TextExample("facts", f"What is {lhs}?", f"{lhs} = {rhs}. The answer is {rhs}."))
        return out

    def _knowledge(self) -> list[TextExample]:
        world = get_world("glyph")
        return [TextExample("knowledge", c.turns[0].text, c.turns[1].text)
                for c in K.corpus(self.characters, world, seed=self.seed)]

    def _describe(self) -> list[TextExample]:
        rng = random.Random(f"describe:{self.seed}")
        out = []
        for t in direct_targets():
            for _ in range(2):
                layout = "random" if "kind" in t and rng.random() < 0.3 else "canonical"
                out.append(TextExample("describe", rng.choice(DESCRIBE_QUESTIONS),
                                       describe_answer(t), image=t, layout=layout))
        return out

    def _filter(self) -> list[TextExample]:
        """Self-filter examples: every prompt twice, with the right picture and a near miss.

        Both, not one of them: with one picture per prompt the verdict is a function of the
        prompt, and the model memorises it instead of comparing what it sees with what it
        should see (it then answers NO to every new prompt).
        """
        rng = random.Random(f"filter:{self.seed}")
        samples = [s for group in self.train_samples.values() for s in group] + self.knowledge_samples
        out = []
        for s in samples:
            for right in (True, False):
                shown = dict(s.target) if right else near_miss(s.target, rng)
                if "kind" in shown and "count" not in shown:
                    shown["count"] = 1
                answer = filter_answer(s, shown, right, compare=self.filter_compare)
                out.append(TextExample("filter", filter_prompt(s.prompt), answer, image=shown))
        return out

    def character_names(self) -> set[str]:
        """Every character name of every split: left to letter pieces by the tokenizer."""
        world = get_world("glyph")
        names = {c.name for c in self.characters}
        for split in ("dev", "test"):
            names |= {c.name for c in K.make_characters(max(self.n_characters, 50), self.seed,
                                                         split, world)}
        return names

    def all_texts(self) -> Iterable[str]:
        """Every string the tokenizer must know (character names excluded on purpose)."""
        for examples in self.text_examples().values():
            for e in examples:
                yield e.user
                yield e.answer
        for t in direct_targets():
            for template in (*TEMPLATES, HELD_OUT_TEMPLATE):
                yield template.format(p=phrase(t))
                yield template.format(p=phrase(t, bare=True)) if "colour" not in t and "kind" in t else ""
        yield " ".join(str(i) for i in range(101))


def recall_drill(question: str, rules: list[Any], rng: random.Random) -> TextExample:
    """A mapping question's rules, then every key asked in a shuffled order ("What do 'Q', '3'
    and 'H' stand for?") -> every rule in that order, in the worked answers' words. Shuffles
    ``rules`` in place."""
    rng.shuffle(rules)
    asked = [f"'{r.src}'" for r in rules]
    return TextExample("recall", f"{question[: question.rindex(' Which ')]} What do "
                       f"{', '.join(asked[:-1])} and {asked[-1]} stand for?", " ".join(r.step() for r in rules))


def describe_answer(target: Mapping[str, Any]) -> str:
    """How the model describes a picture: 'The image shows 3 red stars.'"""
    return f"The image shows {phrase(target)}."


def worked_answer(sample: Sample, family: str) -> str:
    """A U answer that shows its working and ends with a sentence naming the answer.

    The task checks read the last number (math) or the final sentence (mapping, knowledge).
    """
    steps = [s for s in sample.meta.get("steps", []) if not s.startswith("So draw")]
    if family == "math":
        return " ".join([*steps, f"The answer is {sample.question_answer}."])
    if family == "mapping":
        return " ".join([*steps, f"So the answer is {sample.meta['draw']}."])
    if sample.meta.get("direction") == "inverse" or any(s.startswith("So the one is") for s in steps):
        cut = next(i for i, s in enumerate(steps) if s.startswith("So the one is"))
        return " ".join(steps[: cut + 1])
    return steps[0]


def think_answer(sample: Sample) -> str:
    """What the model writes in think mode: ``<think> steps </think>`` (then the image)."""
    return f"{THINK} {' '.join(sample.meta['steps'])} {END_THINK}"


def near_miss(target: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    """A picture one attribute away from ``target`` (what a generator typically gets wrong)."""
    world = get_world("glyph")
    t = dict(target)
    if "portrait" in t:
        p = dict(t["portrait"])
        key = rng.choice(sorted(p))
        p[key] = rng.choice([v for v in world.portrait[key] if v != p[key]])
        return {"portrait": p}
    choices = ["kind"] + (["colour"] if "colour" in t else []) + (["count"] if "count" in t else [])
    key = rng.choice(choices)
    if key == "count":
        t["count"] = rng.choice([c for c in COUNTS if c != t["count"]])
    elif key == "colour":
        t["colour"] = rng.choice(sorted({o.colour for o in world.objects} - {t["colour"]}))
    else:
        pool = world.objects if "colour" in t else (*world.fruits, *world.flowers)
        kinds = sorted({o.kind for o in pool} - {t["kind"]})
        t["kind"] = rng.choice(kinds)
    return t


def filter_answer(sample: Sample, shown: Mapping[str, Any], right: bool,
                  compare: bool = False) -> str:
    """What the image shows, the worked answer, what it should show, then the verdict.

    ``compare``: the worked answer first (right after the prompt, as in a U answer), what it
    should show, what the image shows, each attribute shown / expected, then the verdict; so
    the two descriptions are adjacent and every check compares words at a fixed distance.
    """
    steps = [s for s in sample.meta.get("steps", []) if not s.startswith("So draw")]
    draw = sample.meta.get("draw", "")
    verdict = "YES" if right else "NO"
    if compare:
        return " ".join([*steps, f"It should show {draw}.", describe_answer(shown),
                         *attribute_checks(shown, sample.target), f"Final Answer: {verdict}"])
    return " ".join([describe_answer(shown), *steps, f"It should show {draw}.",
                     f"Final Answer: {verdict}"])


#: the order attributes are checked in (the order a description names them)
CHECKED = ("count", "colour", "kind", "ethnicity", "hair", "age", "gender")


def attribute_checks(shown: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """'4 / 3 : no .' per attribute of ``expected`` (shown value first): one comparison of
    two adjacent words each, what the verdict is the conjunction of."""
    got = {**shown, **shown.get("portrait", {})}
    want = {**expected, **expected.get("portrait", {})}
    return [f"{got.get(key, '-')} / {want[key]} : {'yes' if got.get(key) == want[key] else 'no'} ."
            for key in CHECKED if key in want]


def split_batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
