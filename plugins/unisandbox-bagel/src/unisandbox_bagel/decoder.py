"""The Mixture-of-Transformers decoder: Qwen2 layers with an understanding and a generation expert.

Every layer holds two full parameter sets, the understanding one under Qwen2's own names and
the generation one with a ``_moe_gen`` suffix (q/k/v/o projections, q/k RMS norms, the input
and post-attention norms, the MLP). Each token is routed by its kind: text, ViT and the
image-boundary tokens use the understanding expert, VAE latent tokens the generation expert;
attention is one softmax over the whole sequence. Qwen2's MLP, RMSNorm and rotary embedding
come from transformers.

Inputs are padded batches ``[B, L, W]`` with an explicit boolean attention mask, so one call
serves prefill, greedy decoding, denoising against a cached context and training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import (
    Qwen2MLP,
    Qwen2RMSNorm,
    Qwen2RotaryEmbedding,
    apply_rotary_pos_emb,
)


def build_qwen2_config(llm: dict) -> Qwen2Config:
    """A Qwen2Config from llm_config.json with the release loader's overrides."""
    known = {k: v for k, v in llm.items() if k not in ("architectures", "auto_map", "torch_dtype", "dtype")}
    config = Qwen2Config(**known)
    config.qk_norm = True
    config.tie_word_embeddings = False
    config.layer_module = "Qwen2MoTDecoderLayer"
    return config


@dataclass
class Route:
    """Which flattened ``B*L`` token positions use the generation expert.

    ``gen`` and ``und`` are index tensors; ``None`` for ``gen`` means every token is an
    understanding token (the common case, which then costs nothing extra).
    """

    gen: torch.Tensor | None = None
    und: torch.Tensor | None = None

    @staticmethod
    def from_mask(gen_mask: torch.Tensor | None) -> Route:
        if gen_mask is None or not bool(gen_mask.any()):
            return Route()
        flat = gen_mask.reshape(-1)
        return Route(gen=flat.nonzero().squeeze(1), und=(~flat).nonzero().squeeze(1))

    def to(self, device: torch.device) -> Route:
        if self.gen is None:
            return self
        return Route(self.gen.to(device), self.und.to(device) if self.und is not None else None)


def mix(x: torch.Tensor, route: Route, und: Callable[[torch.Tensor], torch.Tensor],
        gen: Callable[[torch.Tensor], torch.Tensor], lead: int = 2) -> torch.Tensor:
    """Apply ``und`` to understanding tokens and ``gen`` to generation tokens of ``x``.

    ``x`` has ``lead`` leading token dimensions (``[B, L, ...]``); the result keeps them.
    """
    if route.gen is None:
        return und(x)
    shape = x.shape[:lead]
    flat = x.reshape(-1, *x.shape[lead:])
    if route.und is None or route.und.numel() == 0:
        return gen(x)
    u = und(flat[route.und])
    g = gen(flat[route.gen])
    out = u.new_empty((flat.shape[0], *u.shape[1:]))
    out = out.index_copy(0, route.und, u).index_copy(0, route.gen, g.to(u.dtype))
    return out.reshape(*shape, *u.shape[1:])


class MoTAttention(nn.Module):
    """Grouped-query attention with qk-norm, one projection set per expert."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        width, q_out, kv_out = config.hidden_size, self.num_heads * self.head_dim, \
            self.num_key_value_heads * self.head_dim
        eps = config.rms_norm_eps
        self.q_proj = nn.Linear(width, q_out, bias=True)
        self.k_proj = nn.Linear(width, kv_out, bias=True)
        self.v_proj = nn.Linear(width, kv_out, bias=True)
        self.o_proj = nn.Linear(q_out, width, bias=False)
        self.q_norm = Qwen2RMSNorm(self.head_dim, eps=eps)
        self.k_norm = Qwen2RMSNorm(self.head_dim, eps=eps)
        self.q_proj_moe_gen = nn.Linear(width, q_out, bias=True)
        self.k_proj_moe_gen = nn.Linear(width, kv_out, bias=True)
        self.v_proj_moe_gen = nn.Linear(width, kv_out, bias=True)
        self.o_proj_moe_gen = nn.Linear(q_out, width, bias=False)
        self.q_norm_moe_gen = Qwen2RMSNorm(self.head_dim, eps=eps)
        self.k_norm_moe_gen = Qwen2RMSNorm(self.head_dim, eps=eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                route: Route, past_k: torch.Tensor | None, past_v: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        q = mix(x, route, self.q_proj, self.q_proj_moe_gen).view(b, n, self.num_heads, self.head_dim)
        k = mix(x, route, self.k_proj, self.k_proj_moe_gen).view(b, n, self.num_key_value_heads, self.head_dim)
        v = mix(x, route, self.v_proj, self.v_proj_moe_gen).view(b, n, self.num_key_value_heads, self.head_dim)
        if route.gen is not None:  # the reference normalises and rotates q/k in float32 here
            q, k = q.float(), k.float()
        q = mix(q, route, self.q_norm, self.q_norm_moe_gen)
        k = mix(k, route, self.k_norm, self.k_norm_moe_gen)
        q, k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=2)
        q, k = q.to(v.dtype), k.to(v.dtype)
        if past_k is not None:
            k = torch.cat([past_k.to(k.dtype), k], dim=1)
            v = torch.cat([past_v.to(v.dtype), v], dim=1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
            enable_gqa=self.num_heads != self.num_key_value_heads)
        out = out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)
        return mix(out, route, self.o_proj, self.o_proj_moe_gen), k, v


class MoTDecoderLayer(nn.Module):
    """Pre-norm residual block; every norm and sub-layer exists once per expert."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        eps = config.rms_norm_eps
        self.self_attn = MoTAttention(config)
        self.mlp = Qwen2MLP(config)
        self.mlp_moe_gen = Qwen2MLP(config)
        self.input_layernorm = Qwen2RMSNorm(config.hidden_size, eps=eps)
        self.input_layernorm_moe_gen = Qwen2RMSNorm(config.hidden_size, eps=eps)
        self.post_attention_layernorm = Qwen2RMSNorm(config.hidden_size, eps=eps)
        self.post_attention_layernorm_moe_gen = Qwen2RMSNorm(config.hidden_size, eps=eps)

    def forward(self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor, gen_index: torch.Tensor | None, und_index: torch.Tensor | None,
                past_k: torch.Tensor | None = None, past_v: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns the new hidden states and this layer's keys/values (cache + new tokens).

        Routes travel as plain index tensors so accelerate's device hooks move them along
        with the activations when layers sit on different GPUs.
        """
        route = Route(gen_index, und_index)
        normed = mix(hidden, route, self.input_layernorm, self.input_layernorm_moe_gen)
        attn, k, v = self.self_attn(normed, cos, sin, mask, route, past_k, past_v)
        hidden = hidden + attn
        ffn = mix(hidden, route,
                  lambda h: self.mlp(self.post_attention_layernorm(h)),
                  lambda h: self.mlp_moe_gen(self.post_attention_layernorm_moe_gen(h)))
        return hidden + ffn, k, v


class MoTModel(nn.Module):
    """Embeddings, layers, the two final norms and the rotary table (``language_model.model``)."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList([MoTDecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.norm_moe_gen = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = Qwen2RotaryEmbedding(config=config)


class MoTLanguageModel(nn.Module):
    """``language_model``: the decoder plus the (untied) LM head."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.config = config
        self.model = MoTModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def final_norm(self, hidden: torch.Tensor, route: Route) -> torch.Tensor:
        """The understanding norm for text tokens, the generation norm for latent tokens."""
        model = self.model
        return mix(hidden, route.to(hidden.device), model.norm, model.norm_moe_gen)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM head over understanding-normed states (text tokens only)."""
        normed = self.model.norm(hidden.to(self.model.norm.weight.device))
        return self.lm_head(normed.to(self.lm_head.weight.device))
