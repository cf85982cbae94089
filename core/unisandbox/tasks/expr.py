"""Arithmetic expressions: a tiny AST, exact evaluation, printing, parsing and worked steps.

Values are ``fractions.Fraction`` throughout, so every label the generator writes and every
label the audit recomputes is exact; rounding happens only where a prompt (or an explicit audit
policy) says so. The printed forms are the published ones: ``√16``, ``3^2``, ``10 % 3``,
``*``, ``/``, ``+``, ``-``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from fractions import Fraction

import attrs

from .common import fmt

#: Binary operators by precedence (higher binds tighter); ^ and √ bind tighter than all.
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2}
COMMUTATIVE = frozenset("+*")
#: Limits that keep a parsed expression from exhausting memory (``9^9^9``).
MAX_EXPONENT = 12
MAX_MAGNITUDE = 10**12


class EvalError(ValueError):
    """The expression has no exact rational value (÷0, √ of a non-square, huge power)."""


class ParseError(ValueError):
    """The text is not an expression this parser reads."""


@attrs.frozen
class Num:
    value: int


@attrs.frozen
class Sqrt:
    operand: Node


@attrs.frozen
class Pow:
    base: Node
    exponent: Node


@attrs.frozen
class BinOp:
    op: str
    left: Node
    right: Node
    #: print parentheses around this node even where precedence does not need them
    paren: bool = attrs.field(default=False, eq=False)


Node = Num | Sqrt | Pow | BinOp


# --- evaluation ---------------------------------------------------------------------------
def exact_sqrt(value: Fraction) -> Fraction:
    if value < 0:
        raise EvalError(f"√ of a negative number ({fmt(value)})")
    n, d = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if n * n != value.numerator or d * d != value.denominator:
        raise EvalError(f"√{fmt(value)} is not rational")
    return Fraction(n, d)


def apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op in "/%" and b == 0:
        raise EvalError(f"{fmt(a)} {op} 0 is undefined")
    if op == "/":
        return a / b
    if op == "%":
        return a % b
    raise EvalError(f"unknown operator {op!r}")


def power(a: Fraction, b: Fraction) -> Fraction:
    if b.denominator != 1:
        raise EvalError(f"{fmt(a)}^{fmt(b)} has a fractional exponent")
    if abs(b) > MAX_EXPONENT:
        raise EvalError(f"exponent {fmt(b)} is larger than {MAX_EXPONENT}")
    if a == 0 and b < 0:
        raise EvalError("0 to a negative power is undefined")
    return a ** int(b)


def evaluate(node: Node) -> Fraction:
    """The exact value of ``node``; raises EvalError when there is none."""
    if isinstance(node, Num):
        return Fraction(node.value)
    if isinstance(node, Sqrt):
        return exact_sqrt(evaluate(node.operand))
    if isinstance(node, Pow):
        value = power(evaluate(node.base), evaluate(node.exponent))
    else:
        value = apply(node.op, evaluate(node.left), evaluate(node.right))
    if abs(value.numerator) > MAX_MAGNITUDE or value.denominator > MAX_MAGNITUDE:
        raise EvalError("intermediate value too large")
    return value


def count_ops(node: Node) -> int:
    """Operations in ``node``: √, ^ and each binary operator count one."""
    if isinstance(node, Num):
        return 0
    if isinstance(node, Sqrt):
        return 1 + count_ops(node.operand)
    if isinstance(node, Pow):
        return 1 + count_ops(node.base) + count_ops(node.exponent)
    return 1 + count_ops(node.left) + count_ops(node.right)


def operators(node: Node) -> Iterator[str]:
    """Every operator symbol in ``node`` (√ and ^ included), in evaluation order."""
    if isinstance(node, Sqrt):
        yield from operators(node.operand)
        yield "√"
    elif isinstance(node, Pow):
        yield from operators(node.base)
        yield from operators(node.exponent)
        yield "^"
    elif isinstance(node, BinOp):
        yield from operators(node.left)
        yield from operators(node.right)
        yield node.op


# --- printing -----------------------------------------------------------------------------
def _atomic(node: Node) -> bool:
    return isinstance(node, Num) and node.value >= 0


def to_text(node: Node) -> str:
    """The published surface form, with parentheses only where needed (or asked for)."""
    if isinstance(node, Num):
        return str(node.value)
    if isinstance(node, Sqrt):
        inner = to_text(node.operand)
        return "√" + (inner if _atomic(node.operand) else f"({inner})")
    if isinstance(node, Pow):
        base, exp = to_text(node.base), to_text(node.exponent)
        return (base if _atomic(node.base) else f"({base})") + "^" + (
            exp if _atomic(node.exponent) else f"({exp})")
    left, right = to_text(node.left), to_text(node.right)
    prec = PRECEDENCE[node.op]
    if isinstance(node.left, BinOp) and (node.left.paren or PRECEDENCE[node.left.op] < prec):
        left = f"({left})"
    if isinstance(node.right, BinOp) and (node.right.paren or PRECEDENCE[node.right.op] <= prec):
        right = f"({right})"
    return f"{left} {node.op} {right}"


def canonical(node: Node) -> str:
    """A prefix form that ignores parentheses and the order of + and * operands.

    ``2 + 3`` and ``(3 + 2)`` share one canonical form, hence one split.
    """
    if isinstance(node, Num):
        return str(node.value)
    if isinstance(node, Sqrt):
        return f"(sqrt {canonical(node.operand)})"
    if isinstance(node, Pow):
        return f"(^ {canonical(node.base)} {canonical(node.exponent)})"
    a, b = canonical(node.left), canonical(node.right)
    if node.op in COMMUTATIVE and b < a:
        a, b = b, a
    return f"({node.op} {a} {b})"


def steps(node: Node) -> list[str]:
    """One short sentence per operation, in evaluation order: ``√16 = 4.``, ``4 - 2 = 2.``."""
    out: list[str] = []

    def walk(n: Node) -> Fraction:
        if isinstance(n, Num):
            return Fraction(n.value)
        if isinstance(n, Sqrt):
            v = walk(n.operand)
            r = exact_sqrt(v)
            out.append(f"√{fmt(v)} = {fmt(r)}.")
            return r
        if isinstance(n, Pow):
            a, b = walk(n.base), walk(n.exponent)
            r = power(a, b)
            out.append(f"{_operand(a)}^{_operand(b)} = {fmt(r)}.")
            return r
        a, b = walk(n.left), walk(n.right)
        r = apply(n.op, a, b)
        out.append(f"{_operand(a)} {n.op} {_operand(b)} = {fmt(r)}.")
        return r

    walk(node)
    return out


def _operand(value: Fraction) -> str:
    text = fmt(value)
    return f"({text})" if value < 0 or value.denominator != 1 else text


# --- rounding -----------------------------------------------------------------------------
ROUNDING = ("floor", "round", "exact")


def round_value(value: Fraction, policy: str) -> int | None:
    """An integer answer under a rounding policy; None when ``exact`` and not an integer."""
    if value.denominator == 1:
        return int(value)
    if policy == "floor":
        return math.floor(value)
    if policy == "round":  # half up, the school rule
        return math.floor(value + Fraction(1, 2))
    if policy == "ceil":
        return math.ceil(value)
    return None


# --- parsing ------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(.))")
_UNICODE = {"×": "*", "÷": "/", "−": "-", "–": "-", "²": "^2", "³": "^3", "∗": "*"}


def tokenize(text: str) -> list[str]:
    for k, v in _UNICODE.items():
        text = text.replace(k, v)
    tokens = []
    for number, other in _TOKEN.findall(text):
        if number:
            tokens.append(number)
        elif other.strip():
            if other not in "+-*/%^√()":
                raise ParseError(f"unexpected character {other!r}")
            tokens.append(other)
    return tokens


class _Parser:
    """Recursive descent: expr := term (+|- term)*; term := unary (*|/|% unary)*;
    unary := - unary | power; power := √ power | atom (^ unary)?; atom := NUM | ( expr )."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ParseError("expression ends too early")
        self.i += 1
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            node = BinOp(self.take(), node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/", "%"):
            node = BinOp(self.take(), node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return BinOp("-", Num(0), self.unary())
        return self.power()

    def power(self) -> Node:
        if self.peek() == "√":
            self.take()
            return Sqrt(self.power())
        base = self.atom()
        if self.peek() == "^":
            self.take()
            return Pow(base, self.unary())
        return base

    def atom(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.expr()
            if self.take() != ")":
                raise ParseError("missing ')'")
            return attrs.evolve(node, paren=True) if isinstance(node, BinOp) else node
        if tok[0].isdigit():
            if "." in tok:
                raise ParseError(f"decimal number {tok} (only integers are read)")
            return Num(int(tok))
        raise ParseError(f"unexpected {tok!r}")


def parse(text: str) -> Node:
    """Parse an expression such as ``(12 / √4) - 5``; raises ParseError."""
    tokens = tokenize(text)
    if not tokens:
        raise ParseError("empty expression")
    parser = _Parser(tokens)
    node = parser.expr()
    if parser.peek() is not None:
        raise ParseError(f"unexpected {parser.peek()!r} after the expression")
    return node
