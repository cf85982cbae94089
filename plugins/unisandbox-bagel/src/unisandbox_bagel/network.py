"""BAGEL's network (module names = the release's weight names) and its batched forward passes.

Sequences are built from blocks, as in the reference inferencer:

* text: ``<|im_start|> tokens <|im_end|>``, causal, consecutive rope positions;
* an understood image: ``<|vision_start|> ViT tokens <|vision_end|>``, full attention inside,
  every token at one rope position, the next block one position later;
* an image being generated: ``<|vision_start|> latent tokens <|vision_end|>``, full attention
  inside, one rope position; latent tokens use the generation expert, the two boundary tokens
  the understanding one.

A :class:`Context` is the KV cache of a batch of such sequences (padded, with a validity mask
and each row's next rope position). Operations return new contexts, so a context can be kept
as the CFG branch while another grows from it, and the same code runs under autograd.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .decoder import MoTLanguageModel, Route, build_qwen2_config
from .embeddings import MLPConnector, PositionEmbedding, TimestepEmbedder
from .images import grid_positions, patchify
from .layout import Settings
from .sampler import SamplerSettings, cfg_active, guide, time_grid
from .vision import NaViTVision, build_siglip_config


@dataclass
class TokenIds:
    bos: int
    eos: int
    start_of_image: int
    end_of_image: int


@dataclass
class Context:
    """Per-layer keys/values ``[B, L, kv_heads, head_dim]`` (None while empty), the validity
    mask ``[B, L]`` and the next rope position of each row ``[B]``."""

    keys: list[torch.Tensor | None]
    values: list[torch.Tensor | None]
    valid: torch.Tensor
    next_pos: torch.Tensor

    @classmethod
    def empty(cls, layers: int, batch: int, device: torch.device) -> Context:
        return cls([None] * layers, [None] * layers, torch.zeros(batch, 0, dtype=torch.bool, device=device),
                   torch.zeros(batch, dtype=torch.long, device=device))

    @property
    def batch(self) -> int:
        return self.valid.shape[0]

    @property
    def length(self) -> int:
        return self.valid.shape[1]

    def rows(self, index: Sequence[int]) -> Context:
        idx = torch.as_tensor(list(index), dtype=torch.long)

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[idx.to(t.device)]

        return Context([pick(k) for k in self.keys], [pick(v) for v in self.values],
                       self.valid[idx.to(self.valid.device)], self.next_pos[idx.to(self.next_pos.device)])

    @staticmethod
    def stack(contexts: Sequence[Context]) -> Context:
        """Concatenate along the batch, padding shorter caches with invalid slots."""
        length = max(c.length for c in contexts)
        layers = len(contexts[0].keys)

        def like(layer: int, kind: str) -> torch.Tensor | None:
            for c in contexts:
                t = getattr(c, kind)[layer]
                if t is not None:
                    return t
            return None

        keys, values = [], []
        for layer in range(layers):
            for kind, out in (("keys", keys), ("values", values)):
                ref = like(layer, kind)
                if ref is None:
                    out.append(None)
                    continue
                parts = []
                for c in contexts:
                    t = getattr(c, kind)[layer]
                    if t is None:
                        t = ref.new_zeros((c.batch, 0, *ref.shape[2:]))
                    pad = length - t.shape[1]
                    if pad:
                        t = torch.cat([t, t.new_zeros((t.shape[0], pad, *t.shape[2:]))], dim=1)
                    parts.append(t)
                out.append(torch.cat(parts, dim=0))
        valid = torch.cat([torch.cat([c.valid, c.valid.new_zeros((c.batch, length - c.length))], dim=1)
                           for c in contexts])
        return Context(keys, values, valid, torch.cat([c.next_pos for c in contexts]))


class BagelNetwork(nn.Module):
    """Decoder, vision encoder and generation heads, named exactly as in ``ema.safetensors``."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.llm_config = build_qwen2_config(settings.llm)
        self.vit_config = build_siglip_config(settings.vit)
        width = self.llm_config.hidden_size
        self.hidden_size = width
        self.latent_patch_size = settings.latent_patch_size
        self.latent_channels = settings.latent_channels
        self.patch_latent_dim = self.latent_patch_size ** 2 * self.latent_channels

        self.language_model = MoTLanguageModel(self.llm_config)
        self.vit_model = NaViTVision(self.vit_config)
        self.connector = MLPConnector(self.vit_config.hidden_size, width, settings.connector_act)
        self.vit_pos_embed = PositionEmbedding(settings.vit_max_num_patch_per_side, width)
        self.time_embedder = TimestepEmbedder(width)
        self.vae2llm = nn.Linear(self.patch_latent_dim, width)
        self.llm2vae = nn.Linear(width, self.patch_latent_dim)
        self.latent_pos_embed = PositionEmbedding(settings.max_latent_size, width)

    # --- plumbing --------------------------------------------------------------------------
    @property
    def layers(self) -> nn.ModuleList:
        return self.language_model.model.layers

    @property
    def main_device(self) -> torch.device:
        return self.language_model.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.language_model.model.embed_tokens.weight.dtype

    def empty(self, batch: int) -> Context:
        return Context.empty(len(self.layers), batch, self.main_device)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        table = self.language_model.model.embed_tokens
        return table(ids.to(table.weight.device))

    def run(self, ctx: Context, embeds: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor,
            causal: bool, gen_mask: torch.Tensor | None = None, collect: bool = False
            ) -> tuple[torch.Tensor, Context, list[torch.Tensor] | None]:
        """One block of ``[B, Lq]`` tokens against ``ctx``; returns the last hidden states
        (before the final norm), the extended context (rope positions not advanced) and, with
        ``collect``, the residual stream after the embeddings and after every layer."""
        device = self.main_device
        b, n = valid.shape
        valid = valid.to(device)
        if not causal and bool(valid.all()):
            # every query sees the same keys (image blocks while sampling): one mask row per
            # sample instead of a [Lq, Lk] matrix, which at 1024 px would be gigabytes
            mask = torch.cat([ctx.valid, valid], dim=1)[:, None, None, :]
        else:
            block = valid[:, None, :].expand(b, n, n)
            if causal:
                block = block & torch.ones(n, n, dtype=torch.bool, device=device).tril()
            block = block | torch.eye(n, dtype=torch.bool, device=device)
            mask = torch.cat([ctx.valid[:, None, :].expand(b, n, ctx.length), block], dim=2)[:, None]
        hidden = embeds.to(device=device, dtype=self.dtype)
        cos, sin = self.language_model.model.rotary_emb(hidden, positions.to(device))
        route = Route.from_mask(gen_mask.to(device) if gen_mask is not None else None)
        collected = [hidden] if collect else None
        keys, values = [], []
        for layer, past_k, past_v in zip(self.layers, ctx.keys, ctx.values, strict=True):
            hidden, k, v = layer(hidden, cos, sin, mask, route.gen, route.und, past_k, past_v)
            keys.append(k)
            values.append(v)
            if collected is not None:
                collected.append(hidden)
        new_ctx = Context(keys, values, torch.cat([ctx.valid, valid], dim=1), ctx.next_pos)
        return hidden.to(device), new_ctx, collected

    # --- text --------------------------------------------------------------------------
    def prefill_text(self, ctx: Context, segments: Sequence[Sequence[int]], tokens: TokenIds,
                     collect: bool = False) -> tuple[Context, list[torch.Tensor] | None, torch.Tensor]:
        """Append ``<|im_start|> ids <|im_end|>`` per row; returns the context, the collected
        residual streams (if asked) and each row's segment length."""
        device = self.main_device
        rows = [[tokens.bos, *seg, tokens.eos] for seg in segments]
        lengths = torch.tensor([len(r) for r in rows], device=device)
        n = int(lengths.max())
        ids = torch.full((len(rows), n), tokens.eos, dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        valid = torch.arange(n, device=device)[None, :] < lengths[:, None]
        positions = ctx.next_pos[:, None] + torch.arange(n, device=device)[None, :]
        _, new_ctx, collected = self.run(ctx, self.embed(ids), positions, valid, causal=True, collect=collect)
        new_ctx.next_pos = ctx.next_pos + lengths
        return new_ctx, collected, lengths

    def greedy(self, ctx: Context, max_length: int, tokens: TokenIds) -> list[list[int]]:
        """Greedy decoding from ``<|im_start|>`` until ``<|im_end|>``, batched.

        ``max_length`` counts the start token, as the reference's ``generate_text`` does, so
        at most ``max_length - 1`` tokens come back per row (without the start and end tokens).
        """
        device = self.main_device
        b = ctx.batch
        current = torch.full((b,), tokens.bos, dtype=torch.long, device=device)
        done = torch.zeros(b, dtype=torch.bool, device=device)
        out: list[list[int]] = [[] for _ in range(b)]
        ones = torch.ones(b, 1, dtype=torch.bool, device=device)
        for _ in range(max_length - 1):
            hidden, ctx, _ = self.run(ctx, self.embed(current[:, None]), ctx.next_pos[:, None],
                                      ones, causal=True)
            ctx.next_pos = ctx.next_pos + 1
            current = self.language_model.logits(hidden[:, -1]).argmax(dim=-1).to(device)
            done = done | (current == tokens.eos)
            if bool(done.all()):
                break
            for i in (~done).nonzero().flatten().tolist():
                out[i].append(int(current[i]))
        return out

    # --- understanding images ------------------------------------------------------------
    def prefill_vit(self, ctx: Context, images: Sequence[torch.Tensor], tokens: TokenIds) -> Context:
        """Append ``<|vision_start|> ViT tokens <|vision_end|>`` per row (``[3, H, W]`` in [-1, 1])."""
        device = self.main_device
        p = self.vit_config.patch_size
        side = self.settings.vit_max_num_patch_per_side
        patches = [patchify(img, p) for img in images]
        pos = [grid_positions(img.shape[1] // p, img.shape[2] // p, side, self.settings.interpolate_pos)
               for img in images]
        counts = [t.shape[0] for t in patches]
        n = max(counts)
        b = len(images)
        vit_in = torch.zeros(b, n, patches[0].shape[1])
        vit_pos = torch.zeros(b, n, dtype=torch.long)
        vit_valid = torch.zeros(b, n, dtype=torch.bool)
        for i, (t, q) in enumerate(zip(patches, pos, strict=True)):
            vit_in[i, : t.shape[0]], vit_pos[i, : t.shape[0]], vit_valid[i, : t.shape[0]] = t, q, True
        vit_device = self.vit_model.vision_model.embeddings.patch_embedding.weight.device
        vit_dtype = self.vit_model.vision_model.embeddings.patch_embedding.weight.dtype
        features = self.vit_model(vit_in.to(vit_device, vit_dtype), vit_pos.to(vit_device),
                                  vit_valid.to(vit_device))
        conn = self.connector.fc1.weight.device
        features = self.connector(features.to(conn))
        features = features + self.vit_pos_embed(vit_pos.to(self.vit_pos_embed.pos_embed.device)).to(conn)
        embeds = torch.zeros(b, n + 2, self.hidden_size, dtype=self.dtype, device=device)
        valid = torch.zeros(b, n + 2, dtype=torch.bool, device=device)
        marks = self.embed(torch.tensor([tokens.start_of_image, tokens.end_of_image], device=device))
        for i, count in enumerate(counts):
            embeds[i, 0] = marks[0]
            embeds[i, 1 : 1 + count] = features[i, :count].to(device, self.dtype)
            embeds[i, 1 + count] = marks[1]
            valid[i, : count + 2] = True
        positions = ctx.next_pos[:, None].expand(b, n + 2)
        _, new_ctx, _ = self.run(ctx, embeds, positions, valid, causal=False)
        new_ctx.next_pos = ctx.next_pos + 1
        return new_ctx

    # --- generating images ----------------------------------------------------------------
    def latent_grid(self, height: int, width: int) -> tuple[int, int, torch.Tensor]:
        down = self.settings.latent_downsample
        rows, cols = height // down, width // down
        pos = grid_positions(rows, cols, self.settings.max_latent_size, self.settings.interpolate_pos)
        return rows, cols, pos

    def latent_block(self, x: torch.Tensor, t: torch.Tensor, pos: torch.Tensor, tokens: TokenIds
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings ``[B, N+2, W]`` of ``<|vision_start|> latents <|vision_end|>`` and the
        generation-expert mask. ``t`` is one time per row."""
        b, n, _ = x.shape
        heads = self.vae2llm.weight
        lat = self.vae2llm(x.to(heads.device, heads.dtype))
        lat = lat + self.time_embedder(t.to(self.time_embedder.mlp[0].weight.device)).to(lat.device)[:, None, :]
        lat = lat + self.latent_pos_embed(pos.to(self.latent_pos_embed.pos_embed.device)).to(lat.device, lat.dtype)[None]
        device = self.main_device
        marks = self.embed(torch.tensor([tokens.start_of_image, tokens.end_of_image], device=device))
        embeds = torch.cat([marks[0].expand(b, 1, -1), lat.to(device, marks.dtype), marks[1].expand(b, 1, -1)], dim=1)
        gen_mask = torch.zeros(b, n + 2, dtype=torch.bool, device=device)
        gen_mask[:, 1 : n + 1] = True
        return embeds, gen_mask

    def velocity(self, ctx: Context, x: torch.Tensor, t: torch.Tensor, pos: torch.Tensor,
                 tokens: TokenIds) -> torch.Tensor:
        """Predicted velocity ``[B, N, p*p*C]`` for latent tokens ``x`` at times ``t`` after ``ctx``."""
        b, n, _ = x.shape
        embeds, gen_mask = self.latent_block(x, t, pos, tokens)
        positions = ctx.next_pos[:, None].expand(b, n + 2)
        valid = torch.ones(b, n + 2, dtype=torch.bool, device=self.main_device)
        hidden, _, _ = self.run(ctx, embeds, positions, valid, causal=False, gen_mask=gen_mask)
        latent_hidden = hidden[:, 1 : n + 1]
        normed = self.language_model.model.norm_moe_gen(latent_hidden.to(
            self.language_model.model.norm_moe_gen.weight.device))
        return self.llm2vae(normed.to(self.llm2vae.weight.device)).float()

    def sample(self, cond: Context, uncond: Context, noise: torch.Tensor, pos: torch.Tensor,
               settings: SamplerSettings, tokens: TokenIds) -> torch.Tensor:
        """Euler integration from ``noise`` (t = 1) to latent tokens (t = 0), text CFG inside
        the interval. ``cond`` and ``uncond`` hold one row per image."""
        times, steps = time_grid(settings.steps, settings.shift)
        x = noise.float().to(self.main_device)
        b = x.shape[0]
        both = Context.stack([cond, uncond]) if settings.cfg_text_scale > 1.0 else None
        for t, dt in zip(times.tolist(), steps.tolist(), strict=True):
            if both is not None and cfg_active(t, settings.cfg_interval):
                tt = torch.full((2 * b,), t)
                v = self.velocity(both, torch.cat([x, x]), tt, pos, tokens).to(x.device)
                v = guide(v[:b], v[b:], settings.cfg_text_scale, settings.cfg_renorm_type,
                          settings.cfg_renorm_min)
            else:
                v = self.velocity(cond, x, torch.full((b,), t), pos, tokens).to(x.device)
            x = x - v * dt
        return x
