"""Leak-free splits: an item's split is a fixed function of its identity, never of a seed.

The identity is what a model could memorise: the canonical expression (math), the rule set
(mapping), the character (knowledge). Hashing it decides train / dev / test, so two items that
share an identity always land in the same split, for any ``n`` and any seed, and no generated
set of one split can contain another split's expression, rule set, character or prompt.
"""

from __future__ import annotations

import hashlib

from ..errors import UserError

SPLITS: tuple[str, ...] = ("train", "dev", "test")
#: Share of identities per split. Test gets 20 % so that small pools (level-1 math has a few
#: hundred expressions) still leave dozens of distinct test items.
FRACTIONS: dict[str, float] = {"train": 0.7, "dev": 0.1, "test": 0.2}
_SALT = b"unisandbox-split/v1\x1f"


def split_of(identity: str) -> str:
    """The split an identity belongs to (sha256-based, stable across platforms)."""
    digest = hashlib.sha256(_SALT + identity.encode()).digest()
    x = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for name in SPLITS:
        edge += FRACTIONS[name]
        if x < edge:
            return name
    return SPLITS[-1]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split
