"""Math tasks: seeded generators for levels 1-3 and the prompt reader the audit shares.

Level 1: one operation (+ - * /); an inexact division says "rounded down". Level 2: two
operations, at least one of √, ^ or %, no parentheses needed. Level 3: three operations,
usually with parentheses. Generation is top-down from a uniformly drawn answer, so every
intermediate value is a small non-negative integer (a tiny language model can learn the facts)
and every label is proved by exact evaluation of the printed prompt.
"""

from __future__ import annotations

import functools
import random
import re
import warnings
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import attrs

from ..answers import NUMBER_WORDS
from ..errors import DataWarning, UserError
from ..records import Sample
from ..world import Thing, World
from . import expr as E
from .common import GeneratedTask, check_common, count_in, named_one, parse_counts
from .splits import split_of

#: Largest literal operand (√ radicands and powers are separate, see below).
OPERAND_MAX = 20
#: Largest intermediate value a sub-expression may have.
VALUE_MAX = 30
SQRT_ROOTS = range(1, 11)  # √1 .. √100
POWERS = {(b, e): b**e for b in range(2, 6) for e in (0, 2, 3, 4) if b**e <= VALUE_MAX}
ADVANCED = frozenset("√^%")
LEVEL_OPS = {1: "+-*/", 2: "+-*/%√^", 3: "+-*/%√^"}
MAX_TRIES = 5000

#: (plain, rounded-down) phrasings; the first five are the published ones.
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("Generate as many {o} as the result of {e}.", "Generate as many {o} as the result of {e}, rounded down."),
    ("Produce a number of {o} equal to the result of {e}.", "Produce a number of {o} equal to the result of {e}, rounded down."),
    ("Show the number of {o} that matches the outcome of {e}.", "Show the number of {o} that matches the outcome of {e}, rounded down."),
    ("Create the same quantity of {o} as {e} equals.", "Create the same quantity of {o} as {e} equals then rounded down."),
    ("Provide the same number of {o} as calculated by {e}.", "Provide the same number of {o} as calculated by {e}, rounded down."),
    ("Draw as many {o} as {e}.", "Draw as many {o} as {e}, rounded down."),
    ("Make the same amount of {o} as {e}.", "Make the same amount of {o} as {e}, rounded down."),
    ("Give a number of {o} equal to {e}.", "Give a number of {o} equal to {e}, rounded down."),
)


# --- generation ---------------------------------------------------------------------------
def _gen(value: int, budget: int, ops: str, rng: random.Random) -> E.Node | None:
    """An expression with exactly ``budget`` operations whose value is ``value``."""
    if budget == 0:
        return E.Num(value) if 0 <= value <= OPERAND_MAX else None
    choices = list(ops)
    rng.shuffle(choices)
    for op in choices:
        if op == "√":
            if budget == 1 and value in SQRT_ROOTS:
                return E.Sqrt(E.Num(value * value))
            continue
        if op == "^":
            reps = [k for k, v in POWERS.items() if v == value]
            if budget == 1 and reps:
                b, e = rng.choice(reps)
                return E.Pow(E.Num(b), E.Num(e))
            continue
        for _ in range(4):
            left_budget = rng.randint(0, budget - 1)
            pair = _operands(op, value, rng)
            if pair is None:
                break
            left = _gen(pair[0], left_budget, ops, rng)
            right = _gen(pair[1], budget - 1 - left_budget, ops, rng) if left else None
            if left is not None and right is not None:
                return E.BinOp(op, left, right)
    return None


def _operands(op: str, value: int, rng: random.Random) -> tuple[int, int] | None:
    """Operand values (a, b) with ``a op b == value``, all within VALUE_MAX.

    Trivial operands (``+ 0``, ``- 0``, ``/ 1``, ``* 0``) are never drawn; ``* 1`` only when
    ``value`` has no other factorisation.
    """
    if op == "+":
        if value < 2:
            return None
        a = rng.randint(1, value - 1)
        return a, value - a
    if op == "-":
        if value >= VALUE_MAX:
            return None
        b = rng.randint(1, min(VALUE_MAX - value, OPERAND_MAX))
        return value + b, b
    options = _operand_table(op, value)
    return rng.choice(options) if options else None


@functools.lru_cache(maxsize=512)
def _operand_table(op: str, value: int) -> tuple[tuple[int, int], ...]:
    if op == "*":
        if value <= 1:
            return ()
        pairs = tuple((a, value // a) for a in range(2, value) if value % a == 0)
        return pairs or ((1, value), (value, 1))
    if op == "/":
        if value <= 0:
            return ()
        return tuple((value * d, d) for d in range(2, 10) if value * d <= VALUE_MAX)
    if op == "%":
        return tuple((value + k * m, m) for m in range(value + 1, 13)
                     for k in range(1, VALUE_MAX) if value + k * m <= OPERAND_MAX)
    raise ValueError(op)


#: Level 1 draws from an enumerated pool (a few hundred expressions), so its operands may be a
#: little larger: every answer then has dozens of expressions in each split.
L1_OPERAND_MAX = 30


@functools.lru_cache(maxsize=8)
def level1_pool(split: str) -> dict[int, dict[str, tuple[tuple[E.Node, bool], ...]]]:
    """answer -> kind (+ - * / floor) -> every level-1 (expression, rounded) of ``split``."""
    pool: dict[int, dict[str, list[tuple[E.Node, bool]]]] = {}

    def add(kind: str, op: str, a: int, b: int, value: int, rounded: bool = False) -> None:
        node = E.BinOp(op, E.Num(a), E.Num(b))
        if 1 <= value <= 20 and split_of(identity(node, rounded)) == split:
            pool.setdefault(value, {}).setdefault(kind, []).append((node, rounded))

    top = L1_OPERAND_MAX
    for a in range(1, top + 1):
        for b in range(1, top + 1):
            if a + b <= 20:
                add("+", "+", a, b, a + b)
            if a > b:
                add("-", "-", a, b, a - b)
            if a * b <= 20 and ((a > 1 and b > 1) or a * b in (1, 2, 3, 5, 7, 11, 13, 17, 19)):
                add("*", "*", a, b, a * b)
            if 2 <= b <= 9 and a % b == 0:
                add("/", "/", a, b, a // b)
            elif 2 <= b <= 9 and a > b and a <= 20:
                add("floor", "/", a, b, a // b, rounded=True)
    return {v: {k: tuple(items) for k, items in kinds.items()} for v, kinds in pool.items()}


def _mark_parens(node: E.Node, rng: random.Random) -> E.Node:
    """Level 3: parenthesise the first inner binary operation (most of the time)."""
    if not isinstance(node, E.BinOp) or rng.random() >= 0.75:
        return node
    for side in ("left", "right"):
        child = getattr(node, side)
        if isinstance(child, E.BinOp):
            return attrs.evolve(node, **{side: attrs.evolve(child, paren=True)})
    return node


def _binary(op: str, a: int, b: int) -> int | None:
    """``a op b`` when it is a non-trivial step with a small whole result, else None."""
    if op == "+":
        r = a + b if a >= 1 and b >= 1 else None
    elif op == "-":
        r = a - b if b >= 1 and a >= b else None
    elif op == "*":
        ok = (a >= 2 and b >= 2) or (min(a, b) == 1 and max(a, b) >= 2 and
                                   not _operand_table("*", a * b)[0][0] >= 2)
        r = a * b if ok else None
    elif op == "/":
        r = a // b if 2 <= b <= 9 and a >= b and a % b == 0 else None
    else:  # %
        r = a % b if 2 <= b <= 12 and a >= b else None
    return r if r is not None and r <= VALUE_MAX else None


@functools.lru_cache(maxsize=4)
def level2_pool(split: str) -> dict[int, dict[str, tuple[E.Node, ...]]]:
    """answer -> operator pair -> every level-2 expression of ``split`` (enumerated once).

    Two operations, at least one of √, ^ or %, literals 1-20, readable left to right without
    parentheses: ``√16 - 2``, ``10 / √25``, ``9 % 4 + 1``, ``1 + 9 % 4``.
    """
    literals = range(1, OPERAND_MAX + 1)
    unary = [(E.Sqrt(E.Num(k * k)), k) for k in SQRT_ROOTS] + \
            [(E.Pow(E.Num(b), E.Num(e)), v) for (b, e), v in POWERS.items()]
    pool: dict[int, dict[str, list[E.Node]]] = {}

    def add(node: E.Node, value: int | None, ops: str) -> None:
        if value is not None and 1 <= value <= 20 and split_of(identity(node, False)) == split:
            pool.setdefault(value, {}).setdefault("".join(sorted(ops)), []).append(node)

    for op in "+-*/%":
        for u, uv in unary:
            sym = "√" if isinstance(u, E.Sqrt) else "^"
            for n in literals:
                add(E.BinOp(op, u, E.Num(n)), _binary(op, uv, n), op + sym)
                add(E.BinOp(op, E.Num(n), u), _binary(op, n, uv), op + sym)
    for inner in "+-*/%":
        for outer in "+-*/%":
            if "%" not in inner + outer:
                continue
            left_ok = E.PRECEDENCE[inner] >= E.PRECEDENCE[outer]
            right_ok = E.PRECEDENCE[inner] > E.PRECEDENCE[outer]
            for a in literals:
                for b in literals:
                    v = _binary(inner, a, b)
                    if v is None:
                        continue
                    for c in literals:
                        if left_ok:
                            add(E.BinOp(outer, E.BinOp(inner, E.Num(a), E.Num(b)), E.Num(c)),
                                _binary(outer, v, c), inner + outer)
                        if right_ok:
                            add(E.BinOp(outer, E.Num(c), E.BinOp(inner, E.Num(a), E.Num(b))),
                                _binary(outer, c, v), inner + outer)
    return {v: {k: tuple(nodes) for k, nodes in kinds.items()} for v, kinds in pool.items()}


def make_expression(level: int, value: int, rng: random.Random) -> tuple[E.Node, bool] | None:
    """One random level-3 candidate (expression, rounded_down) with answer ``value``."""
    node = _gen(value, level, LEVEL_OPS[level], rng)
    return None if node is None else (_mark_parens(node, rng), False)


def identity(node: E.Node, rounded: bool) -> str:
    return "math:" + E.canonical(node) + (":floor" if rounded else "")


@attrs.frozen
class MathItem:
    node: E.Node
    rounded: bool
    value: int
    thing: Thing
    template: int


def generate_items(level: int, n: int, seed: int, split: str, world: World,
                   counts: Sequence[int]) -> list[MathItem]:
    """``n`` items of ``split``; the same arguments give the same items on any machine."""
    rng = random.Random(f"math-{level}:{seed}:{split}:{world.name}:{','.join(map(str, counts))}")
    if level in (1, 2):
        pool = (level1_pool if level == 1 else level2_pool)(split)
        distinct = sum(len(nodes) for value in set(counts) for nodes in pool.get(value, {}).values())
        # level 1 is a small pool by design (tens of expressions a split); a handful repeated
        # over a whole set (counts=20 on dev: one expression) is not what a user meant
        if 0 < distinct < min(n, 10):
            warnings.warn(f"math-{level}: only {distinct} distinct {split} expression(s) have an "
                          f"answer in counts {','.join(map(str, counts))}; the {n} items repeat "
                          "them (with other objects and wordings)", DataWarning, stacklevel=2)
    items: list[MathItem] = []
    for _ in range(n):
        value = rng.choice(counts)
        if level in (1, 2):
            kinds = (level1_pool if level == 1 else level2_pool)(split).get(value)
            if not kinds:
                raise UserError(f"math-{level}: no {split} expression has the answer {value}; "
                                "choose counts within 1-20")
            chosen = rng.choice(kinds[rng.choice(sorted(kinds))])
            made = chosen if level == 1 else (chosen, False)
            items.append(MathItem(made[0], made[1], value, rng.choice(world.objects),
                                  rng.randrange(len(TEMPLATES))))
            continue
        for _attempt in range(MAX_TRIES):
            made = make_expression(level, value, rng)
            if made is not None and split_of(identity(*made)) == split:
                break
        else:
            raise UserError(f"math-{level}: found no {split} expression with answer {value} "
                            f"in {MAX_TRIES} tries; widen counts")
        items.append(MathItem(made[0], made[1], value, rng.choice(world.objects),
                              rng.randrange(len(TEMPLATES))))
    return items


def question_of(expression: str, rounded: bool) -> str:
    return f"What is {expression}, rounded down?" if rounded else f"What is {expression}?"


def worked_steps(node: E.Node, rounding: str | None, value: int) -> list[str]:
    """Evaluation steps; an inexact final result ends in ``= N rounded down.``."""
    out = E.steps(node)
    if rounding and E.evaluate(node).denominator != 1:
        word = {"floor": "rounded down", "round": "rounded", "ceil": "rounded up"}[rounding]
        out[-1] = out[-1].rsplit(" = ", 1)[0] + f" = {value} {word}."
    return out


def to_sample(item: MathItem, index: int, level: int, split: str, n_counts: int,
              world: str) -> Sample:
    text = E.to_text(item.node)
    plain, rounded = TEMPLATES[item.template]
    objects = item.thing.name(2)
    draw = f"{item.value} {item.thing.name(item.value)}"
    return Sample(
        id=str(index),
        prompt=(rounded if item.rounded else plain).format(o=objects, e=text),
        answer=draw,
        question=question_of(text, item.rounded),
        question_answer=str(item.value),
        level=level,
        target=item.thing.target(item.value),
        meta={"steps": [*worked_steps(item.node, "floor" if item.rounded else None, item.value),
                        f"So draw {draw}."],
              "draw": draw, "expression": text, "rounding": "floor" if item.rounded else None,
              "identity": identity(item.node, item.rounded), "split": split,
              "template": item.template, "chance": 1.0 / n_counts, "world": world},
    )


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:/\d+)?|\b(?:" + "|".join(NUMBER_WORDS) + r")\b")


def last_number(reply: str) -> Fraction | None:
    """The last number a reply states (digits, a/b, or a number word up to twenty)."""
    found = _NUMBER.findall(reply.lower())
    if not found:
        return None
    last = found[-1]
    if last in NUMBER_WORDS:
        return Fraction(NUMBER_WORDS.index(last))
    try:
        return Fraction(last)
    except (ValueError, ZeroDivisionError):
        return None


def number_matches(reply: str, expected: str) -> bool:
    """U check for math: the reply's last number equals the answer (working may precede it)."""
    got = last_number(reply)
    try:
        return got is not None and got == Fraction(expected)
    except (ValueError, ZeroDivisionError):
        return False


class MathTask(GeneratedTask):
    family = "math"
    unit = "item"

    def __init__(self, level: int, n: int = 100, seed: int = 0, split: str = "test",
                 world: str = "everyday", counts: Any = "1-5") -> None:
        self.level = level
        self.name = f"math-{level}"
        self.n, self.seed, self.split, self.world = check_common(n, seed, split, world)
        self.counts = parse_counts(counts, self.world)

    def build(self) -> list[Sample]:
        items = generate_items(self.level, self.n, self.seed, self.split, self.world, self.counts)
        return [to_sample(it, i + 1, self.level, self.split, len(self.counts), self.world.name)
                for i, it in enumerate(items)]

    def check_understanding(self, sample: Sample, reply: str) -> bool:
        return number_matches(reply, sample.question_answer)

    def consistent(self, sample: Sample, reply: str, description: str) -> bool | None:
        """The description counts the prompt's object as often as the reply's last number,
        and names no other object of the world."""
        value = last_number(reply)
        if value is None or value.denominator != 1 or "kind" not in sample.target:
            return None
        thing = self.world.thing(sample.target["kind"], sample.target.get("colour"))
        alone = named_one(description, [t.name(2) for t in self.world.objects]) == thing.name(2)
        return alone and count_in(description, thing) == int(value)


# --- reading prompts (the audit, the oracle and the published-file task share this) --------
_WORD_OPS = (
    (r"\bthe square root of\b", "√"), (r"\bsquare root of\b", "√"),
    (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\bmultiplied by\b", "*"), (r"\btimes\b", "*"),
    (r"\bdivided by\b", "/"), (r"\bmodulo\b", "%"), (r"\bmod\b", "%"),
    (r"\bto the power of\b", "^"),
)
_THEN = re.compile(r",?\s*then\s+(add|subtract|multiply by|divide by)\s+", re.I)
_THEN_OP = {"add": "+", "subtract": "-", "multiply by": "*", "divide by": "/"}
_SPAN = re.compile(r"[\d\s+\-*/%^√().×÷−²³]+")
_SUSPECT = re.compile(r"\b(where|squared|cubed|twice|thrice|root|power|then|plus|minus|times|"
                      r"divided|sum|difference|product|quotient|half|double)\b", re.I)
_ROUNDING = ((re.compile(r"\brounded? down\b|\bfloor\b", re.I), "floor"),
             (re.compile(r"\brounded? up\b|\bceiling\b", re.I), "ceil"),
             (re.compile(r"\brounded?\b(?! down| up)", re.I), "round"))
_OBJECT = re.compile(r"\b(?:as many|number of|quantity of|amount of)\s+(.+?)\s+"
                     r"(?:as|equal|equals|equivalent|that|matching|matches)\b", re.I)


@attrs.frozen
class MathPrompt:
    """What a math prompt asks: the expression (text and tree), rounding, the object."""

    expression: str | None
    node: E.Node | None
    rounding: str | None
    object: str | None
    problem: str | None = None  # why the prompt could not be read, if it could not

    @property
    def value(self) -> Fraction | None:
        if self.node is None:
            return None
        try:
            return E.evaluate(self.node)
        except E.EvalError:
            return None


def _words_to_symbols(text: str) -> str:
    for pattern, symbol in _WORD_OPS:
        text = re.sub(pattern, symbol, text, flags=re.I)
    parts = _THEN.split(text)
    if len(parts) > 1:  # "A, then add 2" -> "(A) + 2": the later step applies to the whole
        text = parts[0]
        for i in range(1, len(parts), 2):
            spans = [m for m in _SPAN.finditer(text) if any(c.isdigit() for c in m.group())]
            if spans:
                last = spans[-1]
                text = f"{text[: last.start()]} ({last.group().strip()}) "
            text += f"{_THEN_OP[parts[i].lower()]} {parts[i + 1]}"
    return text


_ROUNDING_PHRASE = re.compile(r"\b(?:then\s+)?rounded?\s+(?:down|up)\b", re.I)


def read_math_prompt(prompt: str) -> MathPrompt:
    """Find the expression, rounding phrase and object in a math prompt, or say why not."""
    match = _OBJECT.search(prompt)
    obj = match.group(1).strip() if match else None
    rounding = next((policy for pattern, policy in _ROUNDING if pattern.search(prompt)), None)
    text = _words_to_symbols(prompt)
    spans = [m for m in _SPAN.finditer(text) if any(c.isdigit() for c in m.group())]
    if not spans:
        return MathPrompt(None, None, rounding, obj, "no arithmetic expression found")
    if len(spans) > 1:
        return MathPrompt(None, None, rounding, obj,
                          "several separate number groups: " + " | ".join(m.group().strip() for m in spans))
    span = spans[0]
    expression = span.group().strip().rstrip(".").strip()
    rest = _ROUNDING_PHRASE.sub(" ", text[: span.start()] + " " + text[span.end():])
    suspect = _SUSPECT.search(rest)
    if suspect:
        return MathPrompt(expression, None, rounding, obj,
                          f"the wording around the expression ({suspect.group()!r}) changes it")
    try:
        node = E.parse(expression)
    except E.ParseError as exc:
        return MathPrompt(expression, None, rounding, obj, f"cannot parse {expression!r}: {exc}")
    return MathPrompt(E.to_text(node), node, rounding, obj)


def count_of(value: Fraction, rounding: str | None, policy: str) -> int | None:
    """The integer count a prompt asks for: the prompt's own rounding phrase wins, else policy."""
    return E.round_value(value, rounding or policy)
