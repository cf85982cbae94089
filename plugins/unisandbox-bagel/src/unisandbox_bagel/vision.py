"""The SigLIP NaViT encoder: native-resolution patches, learned 2-D positions, SigLIP layers.

Images keep their aspect ratio; each is cut into ``patch x patch`` pixel tokens that a linear
patch embedding maps to the ViT width (the release stores it as a Linear over flattened
``(row, col, channel)`` patches, not a Conv2d), plus a learned position table of ``(image_size / patch)^2``
rows indexed by the flattened grid position. The encoder layers are transformers' ``SiglipEncoderLayer``; images of
different sizes are batched with a padding mask.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import SiglipVisionConfig
from transformers.models.siglip.modeling_siglip import SiglipEncoder


def build_siglip_config(vit: dict[str, Any]) -> SiglipVisionConfig:
    """SiglipVisionConfig with the layer count the model uses (see layout.read_settings)."""
    known = {k: v for k, v in vit.items()
             if k not in ("architectures", "torch_dtype", "dtype", "rope", "model_type")}
    config = SiglipVisionConfig(**known)
    config._attn_implementation = "sdpa"
    return config


class NaViTEmbeddings(nn.Module):
    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        channels, patch = config.num_channels, config.patch_size
        self.patch_embedding = nn.Linear(channels * patch * patch, config.hidden_size, bias=True)
        self.position_embedding = nn.Embedding((config.image_size // patch) ** 2, config.hidden_size)

    def forward(self, patches: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        return self.patch_embedding(patches) + self.position_embedding(position_ids)


class NaViTTransformer(nn.Module):
    """``vit_model.vision_model``: embeddings, SigLIP encoder layers, final LayerNorm."""

    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = NaViTEmbeddings(config)
        self.encoder = SiglipEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, patches: torch.Tensor, position_ids: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        """``patches`` ``[B, N, C*p*p]``, ``valid`` ``[B, N]`` -> features ``[B, N, width]``."""
        hidden = self.embeddings(patches, position_ids)
        # a key-padding mask, one row per image (each image has at least one valid patch)
        mask = torch.zeros(valid.shape[0], 1, 1, valid.shape[1], dtype=hidden.dtype, device=hidden.device)
        mask = mask.masked_fill(~valid[:, None, None, :], torch.finfo(hidden.dtype).min)
        for layer in self.encoder.layers:
            hidden = layer(hidden, mask)
        return self.post_layernorm(hidden)


class NaViTVision(nn.Module):
    """``vit_model``: the wrapper level the release's key names include."""

    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_model = NaViTTransformer(config)

    def forward(self, patches: torch.Tensor, position_ids: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        return self.vision_model(patches, position_ids, valid)
