"""The FLUX autoencoder as diffusers' AutoencoderKL, reading and writing the release's ae.safetensors.

The release ships the autoencoder with the original (latent-diffusion style) key names
(``encoder.down.0.block.0.conv1``, ``decoder.mid.attn_1.q`` as 1x1 convolutions...).
diffusers' AutoencoderKL configured as FLUX's (16 latent channels, x8, no quant convs) is the
same network; loading converts names with diffusers' own single-file converter, saving uses
the inverse mapping below (``to_release_names``), tested to round-trip through that converter.
Latents are scaled and shifted as BAGEL does: ``z = scale * (x - shift)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from diffusers import AutoencoderKL
from torch import nn


def diffusers_config(ae: Mapping[str, Any]) -> dict[str, Any]:
    """AutoencoderKL arguments for a FLUX-layout autoencoder described by release-style params."""
    levels = len(ae["ch_mult"])
    if 2 ** (levels - 1) != int(ae["downsample"]):
        raise ValueError(f"vae_config: ch_mult has {levels} levels, which downsample by "
                         f"{2 ** (levels - 1)}, not {ae['downsample']}")
    return {
        "in_channels": int(ae["in_channels"]),
        "out_channels": int(ae["out_ch"]),
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "block_out_channels": [int(ae["ch"]) * int(m) for m in ae["ch_mult"]],
        "layers_per_block": int(ae["num_res_blocks"]),
        "act_fn": "silu",
        "latent_channels": int(ae["z_channels"]),
        "norm_num_groups": 32,
        "sample_size": int(ae["resolution"]),
        "scaling_factor": float(ae["scale_factor"]),
        "shift_factor": float(ae["shift_factor"]),
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "mid_block_add_attention": True,
    }


def from_release_names(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Release (ldm) names -> diffusers names, with diffusers' own converter."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    return convert_ldm_vae_checkpoint(dict(state), dict(config))


_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def to_release_names(state: Mapping[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """diffusers names -> release (ldm) names; attention projections become 1x1 convolutions."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        new = name.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        new = re.sub(r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", new)
        new = re.sub(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", new)
        up = re.match(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.", new)
        if up:
            level = levels - 1 - int(up.group(1))
            part = "block" if up.group(2) == "resnets" else "upsample"
            new = f"decoder.up.{level}.{part}." + new[up.end():]
        mid = re.match(r"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.", new)
        if mid:
            new = f"{mid.group(1)}.mid.block_{int(mid.group(2)) + 1}." + new[mid.end():]
        attn = re.match(r"^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)$", new)
        if attn:
            new = f"{attn.group(1)}.mid.attn_1.{_ATTN[attn.group(2)]}.{attn.group(3)}"
            if attn.group(3) == "weight" and attn.group(2) != "group_norm":
                tensor = tensor[:, :, None, None]
        out[new] = tensor.contiguous()
    return out


class FluxAutoencoder(nn.Module):
    """FLUX VAE with BAGEL's latent normalisation; images are in [-1, 1]."""

    def __init__(self, ae: Mapping[str, Any]) -> None:
        super().__init__()
        self.params = dict(ae)
        self.vae = AutoencoderKL(**diffusers_config(ae))
        self.scale_factor = float(ae["scale_factor"])
        self.shift_factor = float(ae["shift_factor"])

    @property
    def levels(self) -> int:
        return len(self.params["ch_mult"])

    def load_release_state(self, state: Mapping[str, torch.Tensor]) -> None:
        converted = from_release_names(state, self.vae.config)
        result = self.vae.load_state_dict(converted, strict=False, assign=True)
        # the converter drops names it does not know; count those as unexpected too
        known = set(to_release_names({k: v for k, v in self.vae.state_dict().items()}, self.levels))
        unexpected = sorted(set(state) - known) + list(result.unexpected_keys)
        if result.missing_keys or unexpected:
            raise ValueError(f"ae.safetensors does not match the FLUX autoencoder: missing "
                             f"{sorted(result.missing_keys)[:5]} ({len(result.missing_keys)}), "
                             f"unexpected {unexpected[:5]} ({len(unexpected)})")

    def release_state(self) -> dict[str, torch.Tensor]:
        return to_release_names(self.vae.state_dict(), self.levels)

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Posterior sample (mean when ``generator`` is None), normalised like BAGEL's."""
        dist = self.vae.encode(images.to(self.vae.dtype)).latent_dist
        if generator is None:
            z = dist.mean
        else:
            noise = torch.randn(dist.mean.shape, generator=generator, dtype=torch.float32)
            z = dist.mean + dist.std * noise.to(dist.mean.device, dist.mean.dtype)
        return self.scale_factor * (z - self.shift_factor)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.to(self.vae.dtype) / self.scale_factor + self.shift_factor
        return self.vae.decode(z).sample
