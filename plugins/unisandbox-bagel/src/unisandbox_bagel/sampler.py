"""The reference rectified-flow sampler: shifted time grid, interval text CFG, norm rescaling.

Time runs from 1 (noise) to 0 (image); the network predicts the velocity ``noise - image`` and
each Euler step moves ``x <- x - v * dt``. Kept free of model code so each rule has a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

RENORM_TYPES = ("global", "channel", "text_channel")


@dataclass(frozen=True)
class SamplerSettings:
    """``steps`` is the number of grid points (the reference's ``num_timesteps``): steps - 1
    network evaluations. CFG applies only while ``interval[0] < t <= interval[1]``."""

    steps: int = 50
    shift: float = 3.0
    cfg_text_scale: float = 4.0
    cfg_interval: tuple[float, float] = (0.4, 1.0)
    cfg_renorm_type: str = "global"
    cfg_renorm_min: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise ValueError(f"steps must be at least 2, got {self.steps}")
        if self.shift <= 0:
            raise ValueError(f"timestep_shift must be positive, got {self.shift}")
        if self.cfg_text_scale < 1.0:
            raise ValueError(f"cfg_text_scale must be >= 1 (1 disables CFG), got {self.cfg_text_scale}")
        lo, hi = self.cfg_interval
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"cfg_interval must satisfy 0 <= start <= end <= 1, got {self.cfg_interval}")
        if self.cfg_renorm_type not in RENORM_TYPES:
            raise ValueError(f"cfg_renorm_type must be one of {RENORM_TYPES}, got {self.cfg_renorm_type!r}")


def shift_time(t: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """``s t / (1 + (s - 1) t)``: keeps 0 and 1, pushes the grid towards the noisy end for s > 1."""
    return shift * t / (1 + (shift - 1) * t)


def time_grid(steps: int, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``steps - 1`` times the network is evaluated at and the step sizes after each."""
    grid = shift_time(torch.linspace(1, 0, steps, dtype=torch.float32), shift)
    return grid[:-1], grid[:-1] - grid[1:]


def cfg_active(t: float, interval: tuple[float, float]) -> bool:
    return interval[0] < t <= interval[1]


def _norm(v: torch.Tensor, per_token: bool) -> torch.Tensor:
    """Per-sample norm of ``[B, N, D]``: over all tokens and channels, or per token."""
    if per_token:
        return torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return torch.linalg.vector_norm(v.flatten(1), dim=1).view(-1, 1, 1)


def guide(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float, renorm_type: str = "global",
          renorm_min: float = 0.0) -> torch.Tensor:
    """Text classifier-free guidance with the reference's rescaling, per sample.

    ``v = v_u + s (v_c - v_u)``, then scaled by ``clamp(|v_c| / |v|, renorm_min, 1)`` so
    guidance never makes the velocity longer than the conditional one. ``global`` takes norms
    over a sample's whole latent (the reference takes them over the whole packed batch, which
    is the same thing for its batch of one); ``channel``/``text_channel`` per token (equal when
    image CFG is off).
    """
    guided = v_uncond + scale * (v_cond - v_uncond)
    per_token = renorm_type != "global"
    ratio = _norm(v_cond, per_token) / (_norm(guided, per_token) + 1e-8)
    return guided * ratio.clamp(min=renorm_min, max=1.0)
