"""A query-based unified multimodal model (the MetaQuery / BLIP3-o / OpenUni family).

Understanding: a causal language model (transformers ``Qwen2ForCausalLM``) reads text and,
through a small SigLIP vision encoder and a projection, images. Generation: N learnable
query tokens are appended after the whole context (prompt, and in think mode the model's own
reasoning); their last hidden states go through a connector and condition a diffusers
``PixArtTransformer2DModel`` denoiser, trained with flow matching in pixel space to predict
the clean image (x-prediction: at 32 px with 8 px patches the patch is wider than the model,
and noise or velocity targets leave visible noise — see shared/notes/sandbox-feasibility.md).

The same code wraps a real backbone: point ``lm`` at a local causal-LM folder (``lm_path``)
and size the vision encoder and denoiser up; nothing here is specific to the toy sizes.

Read top to bottom: config, module, text formats, conditioning, denoising and sampling,
text decoding, losses, save / load.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import PixArtTransformer2DModel
from diffusers.models.activations import GELU
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
    SiglipVisionModel,
)
from unisandbox.run.store import atomic_path, atomic_write_json, read_object

from .tokenization import ASSISTANT, END_THINK, EOS, IMAGE, THINK, USER, load_tokenizer

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EXPERT_SCOPES = ("queries", "all")
#: generation-path parts a config may have, and the value that means "not there"
_UNUSED_PARTS = {"query_expert_rank": 0, "query_expert_scope": "queries", "query_layers": 0}


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------
@dataclass
class QueryUMMConfig:
    """Everything needed to rebuild the module; saved as config.json."""

    lm: dict[str, Any] = field(default_factory=lambda: {
        "model_type": "qwen2", "hidden_size": 128, "intermediate_size": 512,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
        "max_position_embeddings": 512, "tie_word_embeddings": True, "rms_norm_eps": 1e-6,
    })
    vision: dict[str, Any] = field(default_factory=lambda: {
        "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 4, "image_size": 32, "patch_size": 8, "vision_use_head": False,
    })
    denoiser: dict[str, Any] = field(default_factory=lambda: {
        "num_attention_heads": 4, "attention_head_dim": 32, "in_channels": 3,
        "out_channels": 3, "num_layers": 6, "sample_size": 32, "patch_size": 8,
        "norm_type": "ada_norm_single", "cross_attention_dim": 128,
        "use_additional_conditions": False,
    })
    num_queries: int = 8
    image_size: int = 32
    connector_hidden: int = 256
    cond_dropout: float = 0.1  # unconditional training share, for classifier-free guidance
    timestep_mean: float = 0.5  # logit-normal timesteps biased toward noise: count is decided there
    timestep_std: float = 1.0
    noise_draws: int = 4  # noisy copies per image and conditioning: the LM pass is reused
    sample_steps: int = 10
    cfg_scale: float = 2.0
    max_think_tokens: int = 96
    max_answer_tokens: int = 64
    lm_path: str | None = None  # a local causal-LM folder to wrap instead of building ``lm``
    #: rank of the query expert (0: none): low-rank weights that only the query tokens add to
    #: every linear layer of the LM, so the generation path has its own share of the
    #: transformer (as BAGEL's generation expert) and can compute at the query positions
    query_expert_rank: int = 0
    #: where the query expert acts in the generation pass: "queries" (the query positions
    #: only; the context is read with the LM's own states) or "all" (every position, so the
    #: generation path re-reads the prompt with weights of its own, as a MetaQuery whose LLM is
    #: tuned for generation; chat, think and understand never use it either way)
    query_expert_scope: str = "queries"
    #: generation-only transformer layers after the LM (0: none): the queries read the LM's
    #: last states of the whole context again, so the generation path gets depth of its own
    #: beyond the LM's (as MetaQuery's connector is a transformer of its own)
    query_layers: int = 0

    def generation_parts(self) -> dict[str, Any]:
        """The generation-path parts this config has (those not at their unused value)."""
        return {name: getattr(self, name) for name, unused in _UNUSED_PARTS.items()
                if getattr(self, name) != unused}

    def to_json(self) -> dict[str, Any]:
        # parts are written only when used: configs (and recipe digests) of models without
        # them stay as they were
        parts = self.generation_parts()
        return {"architecture": "QueryUMM", **{k: v for k, v in asdict(self).items()
                                               if k not in _UNUSED_PARTS or k in parts}}

    def __post_init__(self) -> None:
        if self.query_expert_scope not in EXPERT_SCOPES:
            raise ValueError(f"query_expert_scope must be one of {', '.join(EXPERT_SCOPES)}, "
                             f"got {self.query_expert_scope!r}")
        if self.query_expert_scope != "queries" and not self.query_expert_rank:
            raise ValueError(f"query_expert_scope={self.query_expert_scope} needs a query expert "
                             "(query_expert_rank > 0)")

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "config.json") -> QueryUMMConfig:
        data = {k: v for k, v in data.items() if k != "architecture"}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{source}: unknown fields {sorted(unknown)}")
        for name, value in data.items():  # a hand-edited value fails here, not inside torch
            f = cls.__dataclass_fields__[name]
            default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
            if default is None:
                continue
            kinds: tuple[type, ...] = (int, float) if isinstance(default, float) else (type(default),)
            if not isinstance(value, kinds) or (isinstance(value, bool) and not isinstance(default, bool)):
                raise ValueError(f"{source}: field {name!r} must be {type(default).__name__}, got {value!r}")
        return cls(**data)


# --------------------------------------------------------------------------------------
# Module
# --------------------------------------------------------------------------------------
class QueryExpert(nn.Module):
    """Low-rank weights that act in every LM linear layer of the generation pass, where
    ``mask`` says: the query positions (``query_expert_scope="queries"``) or all of them.

    The LM's own weights serve the context (understanding); the queries get ``W x + B A x``.
    ``B`` starts at zero, so adding an expert to a trained model changes nothing until the
    generation path is trained (STARS stage III). Text decoding never has query positions,
    so chat, think and understand are untouched by construction.
    """

    def __init__(self, lm: nn.Module, rank: int) -> None:
        super().__init__()
        self.mask: torch.Tensor | None = None  # [B, T, 1], 1 at query positions, set per pass
        self.adapters = nn.ModuleDict()
        for name, module in lm.named_modules():
            if isinstance(module, nn.Linear) and ".layers." in f".{name}":
                key = name.replace(".", "__")
                down, up = nn.Linear(module.in_features, rank, bias=False), nn.Linear(rank, module.out_features, bias=False)
                nn.init.normal_(down.weight, std=module.in_features ** -0.5)
                nn.init.zeros_(up.weight)
                self.adapters[key] = nn.Sequential(down, up)
                module.register_forward_hook(self._hook(key))

    def _hook(self, key: str) -> Any:
        def add(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            if self.mask is None:
                return output
            return output + self.mask.to(output.dtype) * self.adapters[key](args[0])
        return add


class QueryDecoder(nn.Module):
    """Generation-only layers after the LM: the queries attend to each other and to the LM's
    last states of the context (padding masked), then a feed-forward, ``layers`` times.

    Each layer is PyTorch's pre-norm ``nn.TransformerDecoderLayer`` with its output projections
    at zero, so adding the decoder to a trained model changes nothing until the generation
    path is trained (STARS stage III); the context's states are read, never changed.
    """

    def __init__(self, width: int, heads: int, ff: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(width, heads, ff, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(layers))
        for layer in self.layers:
            for proj in (layer.self_attn.out_proj, layer.multihead_attn.out_proj, layer.linear2):
                nn.init.zeros_(proj.weight)
                nn.init.zeros_(proj.bias)

    def forward(self, queries: torch.Tensor, context: torch.Tensor,
                context_mask: torch.Tensor) -> torch.Tensor:
        """queries [B, Q, W], context [B, T, W], context_mask [B, T] (1 = a real token)."""
        padding = context_mask == 0
        for layer in self.layers:
            queries = layer(queries, context, memory_key_padding_mask=padding)
        return queries


class BatchSizedAttention:
    """The low-precision sampling copy's attention: PyTorch's fused kernel for a few images,
    plain batched matrix products from ``threshold`` images up. On CPUs the fused bf16 kernel
    takes about twice as long as the products at hundreds of images (16 image tokens, 8
    condition tokens), while for one prompt the fused kernel is the quicker."""

    def __init__(self, threshold: int = 32) -> None:
        self.threshold = threshold
        self.fused, self.plain = AttnProcessor2_0(), AttnProcessor()

    def __call__(self, attn: nn.Module, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None,
                 temb: torch.Tensor | None = None) -> torch.Tensor:
        processor = self.plain if hidden_states.shape[0] >= self.threshold else self.fused
        return processor(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class QueryUMM(nn.Module):
    """LM + vision encoder (understanding); queries + connector + denoiser (generation)."""

    def __init__(self, config: QueryUMMConfig, tokenizer: PreTrainedTokenizerFast) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        if config.lm_path:
            self.lm = AutoModelForCausalLM.from_pretrained(config.lm_path, local_files_only=True)
        else:
            lm_kwargs = dict(config.lm)
            model_type = lm_kwargs.pop("model_type", "qwen2")
            lm_config = AutoConfig.for_model(
                model_type, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id, bos_token_id=None, **lm_kwargs,
            )
            self.lm = AutoModelForCausalLM.from_config(lm_config)
        width = self.lm.config.hidden_size
        self.vision = SiglipVisionModel(SiglipVisionConfig(**config.vision))
        self.vision_proj = nn.Linear(self.vision.config.hidden_size, width)
        self.queries = nn.Parameter(torch.randn(config.num_queries, width) * 0.02)
        cond_width = config.denoiser["cross_attention_dim"]
        self.connector = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, config.connector_hidden), nn.GELU(),
            nn.Linear(config.connector_hidden, cond_width),
        )
        self.null_condition = nn.Parameter(torch.zeros(config.num_queries, cond_width))
        self.query_expert = QueryExpert(self.lm, config.query_expert_rank) if config.query_expert_rank else None
        lm_config = self.lm.config
        self.query_decoder = (QueryDecoder(width, lm_config.num_attention_heads, lm_config.intermediate_size,
                                           config.query_layers) if config.query_layers else None)
        self.denoiser = PixArtTransformer2DModel(**config.denoiser)
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE)
        self.eos_id = tokenizer.eos_token_id
        self.end_think_id = tokenizer.convert_tokens_to_ids(END_THINK)
        # low-precision copies of the denoiser for sampling, by dtype; a plain dict, so they are
        # neither parameters nor saved, and refreshed from the fp32 weights on every use
        self._sampling_copies: dict[torch.dtype, nn.Module] = {}

    @property
    def device(self) -> torch.device:
        return self.queries.device

    # parameter groups the trainers select ------------------------------------------------
    def understanding_parameters(self) -> list[nn.Parameter]:
        return [*self.lm.parameters(), *self.vision.parameters(), *self.vision_proj.parameters()]

    def generation_parameters(self) -> list[nn.Parameter]:
        extra = [*(self.query_expert.parameters() if self.query_expert is not None else []),
                 *(self.query_decoder.parameters() if self.query_decoder is not None else [])]
        return [self.queries, self.null_condition, *self.connector.parameters(),
                *self.denoiser.parameters(), *extra]

    # ----------------------------------------------------------------------------------
    # Text formats: one place that says what every sequence looks like
    # ----------------------------------------------------------------------------------
    @staticmethod
    def chat_text(user: str, image: bool = False, num_image_tokens: int = 0) -> str:
        images = " ".join([IMAGE] * num_image_tokens) + " " if image else ""
        return f"{USER} {images}{user} {ASSISTANT}"

    @staticmethod
    def generation_context(prompt: str, think: str | None = None) -> str:
        """Normal: the prompt. Think: the prompt and the model's reasoning, in full."""
        text = f"{USER} {prompt} {ASSISTANT}"
        return text if think is None else f"{text} {THINK} {think} {END_THINK}"

    @property
    def num_image_tokens(self) -> int:
        v = self.vision.config
        return (v.image_size // v.patch_size) ** 2

    # ----------------------------------------------------------------------------------
    # Embedding and the LM pass
    # ----------------------------------------------------------------------------------
    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> [B, 3, S, S] in [-1, 1]."""
        size = self.config.image_size
        arrays = [np.asarray(im.convert("RGB").resize((size, size), Image.BOX), dtype=np.float32)
                  for im in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        return (x / 127.5 - 1.0).to(self.device)

    @staticmethod
    def to_images(x: torch.Tensor) -> list[Image.Image]:
        arr = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a) for a in arr]

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(list(texts), padding=True, return_tensors="pt", add_special_tokens=False)
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def embed(self, input_ids: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings, with each ``<image>`` placeholder replaced by a vision feature."""
        embeds = self.lm.get_input_embeddings()(input_ids)
        if images is not None:
            feats = self.vision_proj(self.vision(pixel_values=images).last_hidden_state)
            mask = input_ids == self.image_token_id
            if int(mask.sum()) != feats.shape[0] * feats.shape[1]:
                raise ValueError("number of <image> tokens does not match the image features")
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), feats.to(embeds.dtype))
        return embeds

    def lm_forward(self, embeds: torch.Tensor, mask: torch.Tensor, **kwargs: Any) -> Any:
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids, **kwargs)

    # ----------------------------------------------------------------------------------
    # Conditioning: queries read the whole context
    # ----------------------------------------------------------------------------------
    def query_hidden(self, contexts: Sequence[str]) -> tuple[torch.Tensor, ...]:
        """Hidden states of every LM layer for [context..., queries] (left-padded batch)."""
        return self._query_pass(contexts)[0]

    def _query_pass(self, contexts: Sequence[str]) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """The LM pass over [context..., queries]: every layer's states and the context's mask."""
        ids, context_mask = self.tokenize(contexts)
        b, q = ids.shape[0], self.config.num_queries
        embeds = torch.cat([self.embed(ids), self.queries.unsqueeze(0).expand(b, -1, -1)], 1)
        mask = torch.cat([context_mask, context_mask.new_ones(b, q)], 1)
        if self.query_expert is not None:  # its weights act at the query positions (or all)
            at = torch.zeros(mask.shape, device=mask.device)
            at[:, -q if self.config.query_expert_scope == "queries" else 0:] = 1.0
            self.query_expert.mask = at.unsqueeze(-1)
        try:
            out = self.lm_forward(embeds, mask, output_hidden_states=True, use_cache=False)
        finally:
            if self.query_expert is not None:
                self.query_expert.mask = None
        return out.hidden_states, context_mask

    def condition(self, contexts: Sequence[str]) -> torch.Tensor:
        """[B, Q, C] conditioning for the denoiser from the queries' last hidden states (after
        the query decoder, when there is one)."""
        hidden, context_mask = self._query_pass(contexts)
        q = self.config.num_queries
        queries = hidden[-1][:, -q:]
        if self.query_decoder is not None:
            queries = self.query_decoder(queries, hidden[-1][:, :-q], context_mask)
        return self.connector(queries)

    # ----------------------------------------------------------------------------------
    # Denoising and sampling (flow matching, x-prediction)
    # ----------------------------------------------------------------------------------
    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                denoiser: nn.Module | None = None) -> torch.Tensor:
        """Predict the clean image from x_t = (1 - t) x0 + t noise (in fp32, whatever
        ``denoiser``, the module to run, computes in)."""
        denoiser = self.denoiser if denoiser is None else denoiser
        dtype = next(denoiser.parameters()).dtype
        out = denoiser(x_t.to(dtype), encoder_hidden_states=cond.to(dtype), timestep=t * 1000,
                       added_cond_kwargs={"resolution": None, "aspect_ratio": None})
        return out.sample.float()

    def sampling_denoiser(self, dtype: torch.dtype = torch.float32) -> nn.Module:
        """The denoiser to sample with in ``dtype``: itself for fp32, else a copy in that dtype
        with the current weights (re-copied on each call, so training never leaves it stale),
        tuned for throughput: exact GELU and attention by batch size (both below)."""
        if dtype == torch.float32:
            return self.denoiser
        copy = self._sampling_copies.get(dtype)
        if copy is None or next(copy.parameters()).device != self.device:
            copy = PixArtTransformer2DModel(**self.config.denoiser)
            nn.Module.to(copy, device=self.device, dtype=dtype)  # diffusers' .to() warns
            copy.eval().requires_grad_(False)
            for module in copy.modules():
                if isinstance(module, GELU) and module.approximate == "tanh":
                    # the exact GELU is within 5e-4 of the tanh form, below bf16's rounding
                    # step (4e-3 at 1), and 4x quicker in bf16 on the CPU measured (docs)
                    module.approximate = "none"
            copy.set_attn_processor(BatchSizedAttention())
            self._sampling_copies[dtype] = copy
        with torch.no_grad():  # parameters and buffers: the copy is the denoiser, in dtype
            for low, high in zip(itertools.chain(copy.parameters(), copy.buffers()),
                                 itertools.chain(self.denoiser.parameters(), self.denoiser.buffers()),
                                 strict=True):
                low.copy_(high)
        return copy

    def noise_like(self, seeds: Sequence[int]) -> torch.Tensor:
        """Per-sample noise from per-sample generators: batch composition never changes it."""
        s = self.config.image_size
        return torch.stack([
            torch.randn(3, s, s, generator=torch.Generator().manual_seed(int(seed) % (2**63)))
            for seed in seeds
        ]).to(self.device)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, seeds: Sequence[int], steps: int | None = None,
               cfg_scale: float | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Euler steps from per-seed noise to images in [-1, 1]; the denoiser computes in
        ``dtype`` (bf16 about doubles batched throughput on CPUs with bf16 units), the
        updates stay in fp32."""
        steps = steps or self.config.sample_steps
        cfg = self.config.cfg_scale if cfg_scale is None else cfg_scale
        denoise = functools.partial(self.denoise, denoiser=self.sampling_denoiser(dtype))
        x = self.noise_like(seeds)
        null = self.null_condition.unsqueeze(0).expand_as(cond)
        ts = torch.linspace(1.0, 0.0, steps + 1, device=self.device)
        for t, t_next in itertools.pairwise(ts):
            tt = t.expand(x.shape[0])
            if cfg != 1.0:
                both = denoise(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, null]))
                x_cond, x_null = both.chunk(2)
                x0 = x_null + cfg * (x_cond - x_null)
            else:
                x0 = denoise(x, tt, cond)
            if float(t_next) == 0.0:
                x = x0
            else:
                eps = (x - (1 - t) * x0) / t
                x = (1 - t_next) * x0 + t_next * eps
        return x

    # ----------------------------------------------------------------------------------
    # Text decoding (greedy or sampled, KV-cached, batched)
    # ----------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, texts: Sequence[str], max_new_tokens: int, stop_ids: Sequence[int],
               images: torch.Tensor | None = None, temperatures: Sequence[float] | None = None,
               seeds: Sequence[int] | None = None) -> list[str]:
        """Continue each text until a stop token; returns the new text only.

        Greedy, except rows whose temperature is above 0: those sample, each from its own
        seed's generator (Gumbel-max), so a row's text never depends on its batch.
        """
        pick = _Sampler(temperatures, seeds, len(texts))
        ids, mask = self.tokenize(texts)
        embeds = self.embed(ids, images)
        out = self.lm_forward(embeds, mask, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1]
        stop = torch.tensor(list(stop_ids), device=self.device)
        finished = torch.zeros(len(texts), dtype=torch.bool, device=self.device)
        generated: list[torch.Tensor] = []
        for _ in range(max_new_tokens):
            nxt = pick(logits)
            nxt = torch.where(finished, torch.full_like(nxt, self.tokenizer.pad_token_id), nxt)
            generated.append(nxt)
            finished |= torch.isin(nxt, stop)
            if bool(finished.all()):
                break
            mask = torch.cat([mask, (~finished | torch.isin(nxt, stop)).long().unsqueeze(1)], 1)
            position_ids = (mask.long().sum(-1, keepdim=True) - 1)
            out = self.lm(inputs_embeds=self.lm.get_input_embeddings()(nxt.unsqueeze(1)),
                          attention_mask=mask, position_ids=position_ids, cache=cache, use_cache=True)
            cache, logits = out.cache, out.logits[:, -1]
        if not generated:
            return ["" for _ in texts]
        tokens = torch.stack(generated, 1).tolist()
        stops = set(stop_ids)
        texts_out = []
        for row in tokens:
            cut = next((i for i, tok in enumerate(row) if tok in stops), len(row))
            texts_out.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return texts_out

    def chat(self, questions: Sequence[str]) -> list[str]:
        texts = [self.chat_text(q) for q in questions]
        return self.decode(texts, self.config.max_answer_tokens, [self.eos_id])

    def understand(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        n = self.num_image_tokens
        texts = [self.chat_text(q, image=True, num_image_tokens=n) for q in questions]
        return self.decode(texts, self.config.max_answer_tokens, [self.eos_id], self.pixels(images))

    def think(self, prompts: Sequence[str], temperatures: Sequence[float] | None = None,
              seeds: Sequence[int] | None = None) -> list[str]:
        """The reasoning the model writes before drawing (stops at </think>); greedy, or
        sampled where a temperature is above 0 (see ``decode``)."""
        texts = [f"{self.generation_context(p)} {THINK}" for p in prompts]
        return self.decode(texts, self.config.max_think_tokens, [self.end_think_id, self.eos_id],
                           temperatures=temperatures, seeds=seeds)

    # ----------------------------------------------------------------------------------
    # Losses
    # ----------------------------------------------------------------------------------
    def text_loss(self, prompts: Sequence[str], answers: Sequence[str],
                  images: Sequence[Image.Image] | torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy on the answer tokens only (prompts are chat_text strings).

        ``images`` (PIL images or a [B, 3, S, S] tensor in [-1, 1]) fill the ``<image>``
        placeholders of the prompts, in order.
        """
        full = [f"{p} {a} {EOS}" for p, a in zip(prompts, answers, strict=True)]
        ids, mask = self.tokenize(full)
        prompt_lens = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        labels = ids.clone()
        labels[mask == 0] = -100
        pad = (mask == 0).sum(1).tolist()
        for row, (p_len, n_pad) in enumerate(zip(prompt_lens, pad, strict=True)):
            labels[row, : n_pad + p_len] = -100
        if images is None or isinstance(images, torch.Tensor):
            pixel_values = images
        else:
            pixel_values = self.pixels(images)
        embeds = self.embed(ids, pixel_values)
        logits = self.lm_forward(embeds, mask, use_cache=False).logits
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                               ignore_index=-100)

    def flow_loss(self, contexts: Sequence[str], images: torch.Tensor,
                  generator: torch.Generator | None = None,
                  cond: torch.Tensor | None = None) -> torch.Tensor:
        """Clean-image MSE at logit-normal timesteps; conditions dropped for CFG training.

        Each (context, image) pair is noised ``noise_draws`` times: the LM pass that makes the
        conditioning is the expensive part, and the denoiser learns from every copy (on the
        sandbox this reached a given direct-prompt accuracy about twice as fast per second).
        ``cond``: ``condition(contexts)`` when the caller has it already (STARS's distillation
        also needs it), so the LM runs once.
        """
        cond = self.condition(contexts) if cond is None else cond
        k = max(1, self.config.noise_draws)
        cond, images = cond.repeat(k, 1, 1), images.repeat(k, 1, 1, 1)
        b = images.shape[0]
        if self.config.cond_dropout > 0:
            drop = torch.rand(b, generator=generator).to(self.device) < self.config.cond_dropout
            cond = torch.where(drop[:, None, None], self.null_condition.unsqueeze(0).expand_as(cond), cond)
        u = torch.randn(b, generator=generator).to(self.device)
        t = torch.sigmoid(self.config.timestep_mean + self.config.timestep_std * u)
        noise = torch.randn(images.shape, generator=generator).to(self.device)
        x_t = (1 - t)[:, None, None, None] * images + t[:, None, None, None] * noise
        return F.mse_loss(self.denoise(x_t, t, cond), images)

    # ----------------------------------------------------------------------------------
    # Save / load: config.json + model.safetensors + tokenizer files
    # ----------------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if self.lm.config.tie_word_embeddings:
            state.pop("lm.lm_head.weight", None)
        with atomic_path(path / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        self.tokenizer.save_pretrained(str(path))
        atomic_write_json(path / CONFIG_NAME, self.config.to_json())

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu",
                        query_expert_rank: int | None = None,
                        query_layers: int | None = None,
                        query_expert_scope: str | None = None) -> QueryUMM:
        """Load a folder. ``query_expert_rank`` adds a fresh (zero, so inert) query expert,
        acting where ``query_expert_scope`` says, and ``query_layers`` a fresh (inert) query
        decoder to a checkpoint saved without one, for the generation path to train (see
        QueryExpert, QueryDecoder)."""
        path = Path(path)
        for name in (CONFIG_NAME, WEIGHTS_NAME, "tokenizer.json"):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path} is not a query-umm checkpoint folder (no {name})")
        config = QueryUMMConfig.from_json(read_object(path / CONFIG_NAME), source=str(path / CONFIG_NAME))
        saved_expert = config.query_expert_rank
        added = []  # generation-path parts this load adds fresh (inert until trained)
        for name, module, asked in (("query_expert_rank", "query_expert", query_expert_rank),
                                    ("query_layers", "query_decoder", query_layers)):
            saved = getattr(config, name)
            if asked is not None and asked != saved:
                if saved:
                    raise ValueError(f"{path} was saved with {name}={saved}; it cannot be loaded "
                                     f"with {name}={asked}")
                setattr(config, name, int(asked))
                added.append(f"{module}.")
        # a trained expert is a function of where it acted
        if saved_expert and query_expert_scope not in (None, config.query_expert_scope):
            raise ValueError(f"{path} was saved with query_expert_scope="
                             f"{config.query_expert_scope}; it cannot be loaded with "
                             f"query_expert_scope={query_expert_scope}")
        if query_expert_scope is not None:
            config = replace(config, query_expert_scope=query_expert_scope)  # validates it
        try:
            tokenizer = load_tokenizer(path)
        except Exception as exc:  # a damaged tokenizer.json / tokenizer_config.json
            raise ValueError(f"{path}: its tokenizer files cannot be read ({_first_line(exc)})") from None
        try:
            model = cls(config, tokenizer)
        except Exception as exc:  # sizes or types inside lm / vision / denoiser that cannot build
            raise ValueError(f"{path / CONFIG_NAME} describes a model that cannot be built "
                             f"({type(exc).__name__}: {_first_line(exc)})") from None
        try:
            state = load_file(str(path / WEIGHTS_NAME))
        except Exception as exc:  # safetensors' own error type: a truncated or foreign file
            raise ValueError(f"{path / WEIGHTS_NAME}: not a readable safetensors file ({exc})") from None
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shapes that config.json does not give
            detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
            raise ValueError(f"{path / WEIGHTS_NAME} does not fit {path / CONFIG_NAME}: {detail}") from None
        missing = [k for k in missing if not (k == "lm.lm_head.weight" and model.lm.config.tie_word_embeddings)
                   and not k.startswith(tuple(added))]
        if missing or unexpected:
            raise ValueError(f"{path / WEIGHTS_NAME}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        if model.lm.config.tie_word_embeddings:
            model.lm.tie_weights()
        return model.to(device).eval()


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def cosine_lr(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 10 %: the multiplier for step ``step``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class _Sampler:
    """The next token of each row: argmax, or for rows with a temperature above 0 a Gumbel-max
    draw from that row's own generator (seeded apart from the image noise's)."""

    def __init__(self, temperatures: Sequence[float] | None, seeds: Sequence[int] | None,
                 rows: int) -> None:
        temps = [0.0] * rows if temperatures is None else [float(t) for t in temperatures]
        if len(temps) != rows or (seeds is not None and len(seeds) != rows):
            raise ValueError(f"{rows} texts, {len(temps)} temperatures, "
                             f"{'no' if seeds is None else len(seeds)} seeds")
        if any(t > 0 for t in temps) and seeds is None:
            raise ValueError("sampling (a temperature above 0) needs a seed per text")
        self.temps = torch.tensor(temps)
        self.generators = [torch.Generator().manual_seed((int(s) ^ _THINK_STREAM) % (2**63)) if t > 0
                           else None for t, s in zip(temps, seeds or [0] * rows, strict=True)]

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        nxt = logits.argmax(-1)
        if not any(self.generators):
            return nxt
        sampled = [int((logits[i].float().cpu() / self.temps[i] + _gumbel(logits.shape[-1], g)).argmax())
                   if g is not None else int(nxt[i]) for i, g in enumerate(self.generators)]
        return torch.tensor(sampled, device=logits.device)


#: xor-ed into a request's seed for its reasoning, so the text and the image noise are drawn
#: from different streams of the one seed
_THINK_STREAM = 0x5DEECE66D


def _gumbel(size: int, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(size, generator=generator).clamp(1e-10, 1 - 1e-10)
    return -torch.log(-torch.log(u))
