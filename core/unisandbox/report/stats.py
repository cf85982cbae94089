"""The few statistics the report needs: cells, pooling, a two-proportion z-test, and the exact
McNemar test for two runs judged on the same items."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..run.aggregate import wilson_interval


@dataclass(frozen=True)
class Cell:
    """One accuracy with its counts and 95 % (Wilson) interval."""

    n_yes: int
    n: int
    n_error: int
    lo: float
    hi: float

    @property
    def accuracy(self) -> float | None:
        return self.n_yes / self.n if self.n else None

    @classmethod
    def from_json(cls, cell: Mapping[str, Any] | None) -> Cell | None:
        if not cell:
            return None
        lo, hi = cell["ci95"]
        return cls(int(cell["n_yes"]), int(cell["n"]), int(cell["n_error"]), float(lo), float(hi))

    @classmethod
    def of(cls, n_yes: int, n: int, n_error: int = 0) -> Cell:
        lo, hi = wilson_interval(n_yes, n)
        return cls(n_yes, n, n_error, lo, hi)

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "n": self.n, "n_yes": self.n_yes,
                "n_error": self.n_error, "ci95": [self.lo, self.hi]}

    def text(self) -> str:
        """``62.5 [40.1, 80.2]`` (percent, 95 % interval)."""
        if self.accuracy is None:
            return "-"
        return f"{100 * self.accuracy:.1f} [{100 * self.lo:.1f}, {100 * self.hi:.1f}]"


def pool(cells: Iterable[Cell | None]) -> Cell | None:
    """Several cells as one (sum the counts, recompute the interval); None if none given."""
    got = [c for c in cells if c is not None and c.n]
    if not got:
        return None
    return Cell.of(sum(c.n_yes for c in got), sum(c.n for c in got), sum(c.n_error for c in got))


def separated(low: Cell | None, high: Cell | None) -> bool | None:
    """True when ``high``'s 95 % interval lies entirely above ``low``'s."""
    if low is None or high is None or not low.n or not high.n:
        return None
    return high.lo > low.hi


def two_proportion_z(a: Cell | None, b: Cell | None) -> tuple[float, float] | None:
    """z and two-sided p of the pooled two-proportion z-test of b's rate against a's.

    Both rates 0 or both 1 give z = 0, p = 1 (no evidence of a difference).
    """
    if a is None or b is None or not a.n or not b.n:
        return None
    p_pool = (a.n_yes + b.n_yes) / (a.n + b.n)
    se = math.sqrt(p_pool * (1 - p_pool) * (1 / a.n + 1 / b.n))
    if se == 0:
        return 0.0, 1.0
    z = (b.n_yes / b.n - a.n_yes / a.n) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def mcnemar_exact(b_only: int, a_only: int) -> float:
    """Two-sided p of the exact McNemar test: of the items the two runs judged differently,
    ``b_only`` right only in B and ``a_only`` right only in A; under no difference each such
    item is either way with probability 1/2 (a binomial test). No discordant item gives p = 1.

    On the same items this is the right test: the unpaired z-test treats the two runs as
    independent samples and ignores that most items are right (or wrong) in both."""
    n = b_only + a_only
    if n == 0:
        return 1.0
    # the lower tail summed in log space: exact integers and 2**n take seconds at n = 3000
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
            for k in range(min(b_only, a_only) + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(x - top) for x in logs)
    return min(1.0, 2 * tail)


def one_sided_p(a: Cell | None, b: Cell | None) -> float | None:
    """p of the one-sided z-test that b's rate is above a's."""
    got = two_proportion_z(a, b)
    if got is None:
        return None
    z, _ = got
    return 0.5 * math.erfc(z / math.sqrt(2))


def pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def p_text(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
