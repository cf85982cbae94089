"""Schedules, run lengths and batch order: the small rules the training loop relies on."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st
from unisandbox_stars.finetune import BatchStream, pieces
from unisandbox_stars.options import FinetuneOptions, lr_factor, warmup_steps


@given(st.floats(0, 0.99), st.integers(1, 5000))
def test_warmup_always_ends_before_the_run(fraction: float, total: int) -> None:
    warm = warmup_steps(fraction, total)
    assert 0 <= warm < total or (total == 1 and warm == 0)
    factors = [lr_factor(s, total, warm, "cosine") for s in range(total)]
    # the peak is reached (the original's warm-up never got there) and nothing exceeds it
    assert max(factors) == 1.0


def test_schedules() -> None:
    total, warm = 100, warmup_steps(0.05, 100)
    assert warm == 5
    cosine = [lr_factor(s, total, warm, "cosine") for s in range(total)]
    constant = [lr_factor(s, total, warm, "constant") for s in range(total)]
    assert cosine[:5] == constant[:5] == [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]
    assert cosine[5] == 1.0 and cosine[-1] < 0.001
    assert all(a >= b for a, b in itertools.pairwise(cosine[5:]))
    assert constant[5:] == [1.0] * 95


def test_run_length_and_pieces() -> None:
    assert FinetuneOptions(epochs=2, batch_size=16).total_steps(100) == 13
    assert FinetuneOptions(steps=7).total_steps(100) == 7
    assert FinetuneOptions().total_steps(40, default_epochs=12) == 30
    assert FinetuneOptions(batch_size=16).micro_size(1) == 16
    assert FinetuneOptions(batch_size=16).micro_size(3) == 6
    assert FinetuneOptions(batch_size=16, micro_batch=4).micro_size(3) == 4
    assert pieces(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@given(st.integers(1, 50), st.integers(1, 20), st.integers(0, 3))
def test_batches_cover_every_example_once_per_epoch(n: int, batch: int, seed: int) -> None:
    stream = BatchStream(n, batch, seed)
    steps = -(-3 * n // batch)
    flat = [i for s in range(steps) for i in stream.batch(s)]
    for epoch in range(3):
        assert sorted(flat[epoch * n : (epoch + 1) * n]) == list(range(n))
    # the same step is the same batch, however the stream was walked (resume)
    assert BatchStream(n, batch, seed).batch(steps - 1) == stream.batch(steps - 1)
