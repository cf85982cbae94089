"""The ``glyph-oracle`` model: solves every prompt exactly and draws the canonical answer.

It reads prompts with the same parsers and resolvers the label audit uses (the math expression
evaluator, the mapping rule resolver, the knowledge generator's characters for a given seed),
so it is the ceiling of every glyph-world task and the calibration of the ``glyph`` judge: a
judge that does not score the oracle 100 % is broken. A prompt it cannot solve gets a blank
white image (scored wrong) and, in think mode, the reason as its reasoning text.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import attrs

from ..errors import DataWarning
from ..protocols import Model
from ..records import Generation, GenerationRequest
from ..tasks import arith
from ..tasks.common import article, check_int
from ..tasks.knowledge import Character, make_characters
from ..tasks.mapping import parse_rules, resolve, same_object
from ..tasks.splits import check_split
from ..world import Thing, get_world

_RULE = re.compile(r"\bRule\s+\d+\s*:")
_INVERSE = re.compile(r"characters (\S+) and (\S+?) from .*?whose favorite (fruit|flower) is (.+?)[.?]?$", re.I)
_INVERSE_Q = re.compile(r"^Of (\S+) and (\S+?), whose favorite (fruit|flower) is (.+?)\?$", re.I)
_FORWARD = re.compile(r"(portrait|favorite fruit|favorite flower) of character (\S+?) from", re.I)
_LOOK = re.compile(r"^What does (\S+?) look like\?$", re.I)
_FAVOURITE_Q = re.compile(r"^What is (\S+?)'s favorite (fruit|flower)\?$", re.I)
#: a knowledge question or prompt names its character like this
_NAMED = re.compile(r"\bcharacters?\b|^What does \S+ look like\?$|^What is \S+'s favorite|^Of \S+ and \S+, whose", re.I)
_MATH_Q = re.compile(r"^What is (.+?)(, rounded down)?\?$", re.I)


@attrs.frozen
class Solution:
    """What to draw (None: cannot tell), the reasoning steps, the text answer."""

    target: dict[str, Any] | None
    steps: tuple[str, ...]
    answer: str = ""


UNKNOWN_CHARACTER = "I do not know this character."


class GlyphOracle(Model):
    capabilities = frozenset({"generate", "chat"})

    def __init__(self, world: str = "glyph", seed: int = 0, n_characters: int = 10,
                 split: str = "test", size: int = 32, layout: str = "canonical") -> None:
        self.world = get_world(world)
        self.seed = check_int("seed", seed, 0, 2**63 - 1)
        self.n_characters = check_int("n_characters", n_characters, 2, 5000)
        self.split = check_split(split)
        self.size = check_int("size", size, 32, 1024)
        if self.world.name == "glyph" and self.size % 32:  # a glyph picture is 32 px, scaled up whole
            raise ValueError(f"size must be a multiple of 32 in the glyph world, got {self.size}")
        if layout not in ("canonical", "random"):
            raise ValueError(f"layout must be canonical or random, got {layout!r}")
        self.layout = layout
        self.characters = {c.name: c for c in
                           make_characters(self.n_characters, self.seed, self.split, self.world)}
        self._warned = False

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "world": self.world.name, "seed": self.seed,
                "n_characters": self.n_characters, "split": self.split, "size": self.size,
                "layout": self.layout}

    # --- solving --------------------------------------------------------------------------
    def thing(self, phrase: str) -> Thing | None:
        for t in (*self.world.objects, *self.world.fruits, *self.world.flowers):
            if same_object(phrase, t.name(2)) or same_object(phrase, t.name(1)):
                return t
        return None

    def solve(self, prompt: str) -> Solution:
        if _RULE.search(prompt):
            return self._mapping(prompt)
        if any(name in prompt for name in self.characters) or _FORWARD.search(prompt) or _INVERSE.search(prompt):
            return self._knowledge(prompt)
        return self._math(prompt)

    def _math(self, prompt: str) -> Solution:
        read = arith.read_math_prompt(prompt)
        if read.node is None or read.value is None:
            return Solution(None, (f"I cannot read the arithmetic: {read.problem}.",))
        count = arith.count_of(read.value, read.rounding, "floor")
        rounding = read.rounding or ("floor" if read.value.denominator != 1 else None)
        steps = arith.worked_steps(read.node, rounding, count)
        thing = self.thing(read.object or "")
        if thing is None or count is None or count < 1:
            return Solution(None, (*steps, "There is nothing I can draw."), str(count))
        return Solution(thing.target(count), (*steps, f"So draw {count} {thing.name(count)}."), str(count))

    def _mapping(self, prompt: str) -> Solution:
        rules = parse_rules(prompt)
        if rules.query is None:
            return Solution(None, ("The prompt asks for no symbol.",))
        result = resolve(rules.rules, rules.query)
        steps = tuple(r.step() for r in result.chain)
        if result.object is None:
            return Solution(None, (*steps, f"{result.problem}."))
        thing = self.thing(result.object)
        answer = thing.name(1) if thing else result.object
        if thing is None:
            return Solution(None, (*steps, f"I cannot draw {result.object}."), answer)
        return Solution(thing.target(), (*steps, f"So draw {article(thing.name(1))}."), answer)

    def _knowledge(self, prompt: str) -> Solution:
        inverse = _INVERSE.search(prompt)
        if inverse:
            return self._inverse(*inverse.groups())
        forward = _FORWARD.search(prompt)
        if not forward or forward.group(2) not in self.characters:
            return Solution(None, (UNKNOWN_CHARACTER,))
        c = self.characters[forward.group(2)]
        kind = forward.group(1).lower().replace("favorite ", "")
        if kind == "portrait":
            desc = c.describe()
            return Solution({"portrait": c.portrait}, (c.fact("portrait"), f"So draw a portrait of {desc}."), desc)
        thing = c.fruit if kind == "fruit" else c.flower
        draw = c.fruit_answer if kind == "fruit" else article(c.flower_answer)
        return Solution(thing.target(), (c.fact(kind), f"So draw {draw}."), thing.name(2))

    def _inverse(self, a: str, b: str, kind: str, value: str) -> Solution:
        chars = [self.characters.get(n) for n in (a, b)]
        if None in chars:
            return Solution(None, (UNKNOWN_CHARACTER,))
        kind = kind.lower()
        owners = [c for c in chars if c is not None and
                  same_object((c.fruit if kind == "fruit" else c.flower).kind, value)]
        facts = tuple(c.fact(kind) for c in chars if c is not None)
        if len(owners) != 1:
            return Solution(None, (*facts, f"Not exactly one of them likes {value}."))
        w: Character = owners[0]
        return Solution({"portrait": w.portrait}, (*facts, f"So the one is {w.name}.", w.fact("portrait"),
                                                   f"So draw a portrait of {w.describe()}."), w.name)

    def answer(self, question: str) -> str:
        """A text answer to an understanding question (the U side)."""
        q = question.strip()
        if _RULE.search(q):
            sol = self._mapping(q)
            return sol.answer or "I cannot tell."
        match = _LOOK.match(q)
        if match and match.group(1) in self.characters:
            c = self.characters[match.group(1)]
            return c.fact("portrait")
        match = _FAVOURITE_Q.match(q)
        if match and match.group(1) in self.characters:
            return self.characters[match.group(1)].fact(match.group(2).lower())
        match = _INVERSE_Q.match(q)
        if match:
            sol = self._inverse(*match.groups())
            return sol.answer or "I cannot tell."
        match = _MATH_Q.match(q)
        if match:
            read = arith.read_math_prompt(match.group(1))
            if read.value is not None:
                return str(arith.count_of(read.value, "floor" if match.group(2) else None, "floor"))
        return "I cannot tell."

    # --- the model protocol ---------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        from PIL import Image

        from ..world.glyph_draw import render

        out = []
        for req in requests:
            sol = self.solve(req.prompt)
            if sol.steps == (UNKNOWN_CHARACTER,):
                self._unknown(req.prompt)
            image = None
            if sol.target is not None:
                try:
                    image = render(sol.target, size=self.size, layout=self.layout, seed=req.seed)
                except ValueError:
                    image = None  # not drawable in the glyph world (an everyday cup)
            if image is None:
                image = Image.new("RGB", (self.size, self.size), "white")
            out.append(Generation(image, " ".join(sol.steps) if req.mode == "think" else None))
        return out

    def chat(self, prompts: Sequence[str]) -> list[str]:
        replies = [self.answer(p) for p in prompts]
        for prompt, reply in zip(prompts, replies, strict=True):
            if reply == "I cannot tell." and _NAMED.search(prompt) and not any(
                    name in prompt for name in self.characters):
                self._unknown(prompt)
        return replies

    def _unknown(self, prompt: str) -> None:
        """A ceiling of 0 %, silently, is a misleading number: say why, once."""
        if self._warned:
            return
        self._warned = True
        warnings.warn(f"glyph-oracle does not know the character of {prompt!r} (it knows the "
                      f"{self.n_characters} characters of seed {self.seed}, split {self.split}); "
                      "give it the knowledge task's: --model-arg seed=... --model-arg split=... "
                      "--model-arg n_characters=...", DataWarning, stacklevel=3)
