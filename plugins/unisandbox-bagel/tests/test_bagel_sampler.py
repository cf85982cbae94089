"""The reference sampler's rules, one by one, plus the fixed embeddings they feed."""

from __future__ import annotations

import math

import pytest
import torch
from unisandbox_bagel.embeddings import TimestepEmbedder, sincos_2d_grid
from unisandbox_bagel.images import grid_positions, patchify, unpatchify
from unisandbox_bagel.sampler import SamplerSettings, cfg_active, guide, shift_time, time_grid


def test_shift_formula_keeps_the_ends_and_moves_time_towards_noise() -> None:
    assert shift_time(0.0, 3.0) == 0.0 and shift_time(1.0, 3.0) == 1.0
    assert shift_time(0.5, 3.0) == pytest.approx(0.75)  # 3 * 0.5 / (1 + 2 * 0.5)
    assert shift_time(0.2, 3.0) == pytest.approx(0.6 / 1.4)
    assert shift_time(0.37, 1.0) == pytest.approx(0.37)
    t = torch.linspace(0, 1, 101)
    shifted = shift_time(t, 3.0)
    assert bool((shifted >= t).all()) and bool((shifted[1:] > shifted[:-1]).all())


def test_time_grid_is_the_reference_linspace_with_shift() -> None:
    times, steps = time_grid(50, 3.0)
    assert len(times) == 49 and len(steps) == 49  # 50 grid points -> 49 network evaluations
    assert times[0].item() == 1.0
    assert steps.sum().item() == pytest.approx(1.0, abs=1e-6)
    raw = 1 - 10 / 49
    assert times[10].item() == pytest.approx(3 * raw / (1 + 2 * raw), rel=1e-6)
    assert bool((steps > 0).all())


def test_cfg_interval_is_open_below_closed_above() -> None:
    assert not cfg_active(0.4, (0.4, 1.0)) and cfg_active(0.4001, (0.4, 1.0))
    assert cfg_active(1.0, (0.4, 1.0)) and not cfg_active(0.2, (0.4, 1.0))
    times, _ = time_grid(50, 3.0)
    active = [cfg_active(t, (0.4, 1.0)) for t in times.tolist()]
    # with shift 3 the grid stays above 0.4 much longer than without
    assert sum(active) == sum(1 for t in times.tolist() if t > 0.4)
    assert 40 <= sum(active) < 49 and active[0] and not active[-1]
    assert active == sorted(active, reverse=True)


def test_guidance_formula_and_global_renorm() -> None:
    gen = torch.Generator().manual_seed(0)
    cond = torch.randn(2, 5, 4, generator=gen)
    uncond = torch.randn(2, 5, 4, generator=gen)
    raw = uncond + 4.0 * (cond - uncond)
    out = guide(cond, uncond, 4.0, "global", 0.0)
    for b in range(2):  # rescaled to the conditional norm, per sample, over all tokens
        assert out[b].norm().item() == pytest.approx(min(cond[b].norm(), raw[b].norm()).item(), rel=1e-5)
        ratio = (cond[b].norm() / raw[b].norm()).item()
        assert torch.allclose(out[b], raw[b] * min(ratio, 1.0), atol=1e-6)
    # the norm never grows: a guided vector shorter than the conditional one is left alone
    small = guide(torch.ones(1, 2, 2) * 10, torch.ones(1, 2, 2) * 10.5, 1.5)
    assert torch.allclose(small, torch.full((1, 2, 2), 9.75))
    long = guide(torch.ones(1, 2, 2) * 10, torch.ones(1, 2, 2) * 9.5, 1.5)
    assert torch.allclose(long, torch.full((1, 2, 2), 10.0))
    # renorm_min floors the scale; 1.0 switches rescaling off
    assert torch.allclose(guide(cond, uncond, 4.0, "global", 1.0), raw)
    # per-sample: another sample in the batch does not change a sample's result
    assert torch.allclose(guide(cond[:1], uncond[:1], 4.0), out[:1])


def test_channel_renorm_is_per_token() -> None:
    cond = torch.tensor([[[3.0, 4.0], [0.3, 0.4]]])
    uncond = torch.zeros(1, 2, 2)
    out = guide(cond, uncond, 2.0, "channel")
    assert torch.allclose(out.norm(dim=-1), cond.norm(dim=-1), atol=1e-6)
    assert torch.allclose(guide(cond, uncond, 2.0, "text_channel"), out)


def test_settings_validation() -> None:
    assert SamplerSettings().steps == 50 and SamplerSettings().shift == 3.0
    assert SamplerSettings().cfg_text_scale == 4.0 and SamplerSettings().cfg_interval == (0.4, 1.0)
    for bad in ({"steps": 1}, {"cfg_interval": (0.6, 0.4)}, {"cfg_renorm_type": "local"},
                {"cfg_text_scale": 0.5}, {"shift": 0}):
        with pytest.raises(ValueError):
            SamplerSettings(**bad)


def test_fixed_embeddings_match_their_formulas() -> None:
    table = sincos_2d_grid(4, 8)
    # cell (row 2, col 3) = [sin/cos of the column, sin/cos of the row], omega = 1/10000^(i/2)
    row, col = 2, 3
    omegas = [1.0, 1 / 100.0]
    expect = [math.sin(col * w) for w in omegas] + [math.cos(col * w) for w in omegas] \
        + [math.sin(row * w) for w in omegas] + [math.cos(row * w) for w in omegas]
    assert torch.allclose(table[row * 4 + col], torch.tensor(expect), atol=1e-6)
    feats = TimestepEmbedder.features(torch.tensor([0.0, 0.5]), 4)
    assert torch.allclose(feats[0], torch.tensor([1.0, 1.0, 0.0, 0.0]))  # cos first, then sin
    assert feats[1, 0].item() == pytest.approx(math.cos(0.5)) and feats[1, 3].item() == pytest.approx(
        math.sin(0.5 / 100.0), rel=1e-5)


def test_patches_and_positions_follow_the_reference_layout() -> None:
    image = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(2, 4, 6)
    tokens = patchify(image, 2)
    assert tokens.shape == (6, 8)
    # token (row 1, col 2) holds pixels rows 2-3, cols 4-5 in (row, col, channel) order
    assert tokens[1 * 3 + 2].tolist() == [image[c, 2 + r, 4 + q].item() for r in range(2) for q in range(2)
                                          for c in range(2)]
    assert torch.equal(unpatchify(tokens[None], 2, 3, 2, 2)[0], image)
    assert grid_positions(2, 3, 10).tolist() == [0, 1, 2, 10, 11, 12]
    assert grid_positions(2, 2, 4, interpolate=True).tolist() == [0, 2, 8, 10]
    with pytest.raises(ValueError):
        grid_positions(5, 1, 4)
