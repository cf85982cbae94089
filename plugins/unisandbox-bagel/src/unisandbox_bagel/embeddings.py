"""Small embedding modules around the decoder: timesteps, 2-D grids, the ViT connector.

Their attribute names (``mlp.0``, ``mlp.2``, ``pos_embed``, ``fc1``, ``fc2``) are the release's,
so its weights load unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.activations import ACT2FN


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """``[len(positions), dim]``: sines of the first half of the frequencies, then cosines."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding width must be even, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d_grid(side: int, dim: int) -> torch.Tensor:
    """Fixed embedding of a ``side x side`` grid, row-major (index = row * side + column).

    Half the width encodes the column, half the row (column first), as the release's table.
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding width must be a multiple of 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    col_part = sincos_1d(cols.reshape(-1), dim // 2)
    row_part = sincos_1d(rows.reshape(-1), dim // 2)
    return torch.cat([col_part, row_part], dim=1).float()


class PositionEmbedding(nn.Module):
    """A frozen 2-D sin-cos table looked up by flattened grid position.

    ``pos_embed`` is a parameter that never trains (the release stores it in its weights);
    it is excluded from every trainable group.
    """

    def __init__(self, max_num_patch_per_side: int, hidden_size: int) -> None:
        super().__init__()
        self.max_num_patch_per_side = max_num_patch_per_side
        self.pos_embed = nn.Parameter(sincos_2d_grid(max_num_patch_per_side, hidden_size),
                                      requires_grad=False)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.pos_embed[position_ids]


class TimestepEmbedder(nn.Module):
    """Flow time ``t`` in [0, 1] -> a hidden-size vector (sinusoid features, then an MLP)."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256) -> None:
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )

    @staticmethod
    def features(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        """Cosines then sines of ``t`` at geometrically spaced frequencies (t is not rescaled)."""
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                               device=t.device) / half)
        args = t.float()[:, None] * freqs[None, :]
        out = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            out = torch.cat([out, torch.zeros_like(out[:, :1])], dim=-1)
        return out

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        feats = self.features(t.reshape(-1), self.frequency_embedding_size)
        return self.mlp(feats.to(self.mlp[0].weight.dtype))


class MLPConnector(nn.Module):
    """ViT width -> decoder width: Linear, activation, Linear."""

    def __init__(self, in_dim: int, out_dim: int, hidden_act: str) -> None:
        super().__init__()
        self.activation_fn = ACT2FN[hidden_act]
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.fc2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(x)))
