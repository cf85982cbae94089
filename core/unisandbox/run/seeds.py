"""Per-sample seeds that depend on (run seed, task, sample id, mode) only.

Never on order, batch size or process count: a resumed or sharded run draws the same noise
for the same sample as an uninterrupted single-process run.
"""

from __future__ import annotations

import hashlib


def sample_seed(run_seed: int, task: str, sample_id: str, mode: str) -> int:
    """A 63-bit seed; stable across Python versions and platforms (sha256, not ``hash``)."""
    key = "\x1f".join((str(run_seed), task, sample_id, mode)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & ((1 << 63) - 1)
