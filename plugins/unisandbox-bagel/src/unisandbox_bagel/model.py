"""BAGEL behind unisandbox's Model protocol: generate (normal / think), understand, chat,
probes and the training hooks.

The inference recipe is the reference inferencer's, batched: each prompt is a text block; in
think mode a system instruction comes first and the model writes its plan greedily before
the image; the image is sampled against the whole context with text CFG whose unconditional
branch is the context before the prompt (empty in normal mode, the system instruction in think
mode). Every request's starting noise comes from its own seeded generator, so the batch a
request lands in never changes its noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from unisandbox.paths import weights_fingerprint
from unisandbox.protocols import WEIGHTS_FINGERPRINT, Model, QueryStates
from unisandbox.protocols.model import CapabilityError
from unisandbox.records import Conversation, Generation, GenerationRequest

from . import checkpoint, layout
from .images import patchify, rgb, target_size, to_image, to_tensor, unpatchify
from .network import Context
from .sampler import SamplerSettings, shift_time

if TYPE_CHECKING:
    from PIL.Image import Image

#: The reference's system instruction for thinking before generating (verbatim: the model was
#: trained with it).
GEN_THINK_SYSTEM_PROMPT = (
    "You should first think about the planning process in the mind and then generate the image. \n"
    "The planning process is enclosed within <think> </think> tags, i.e. <think> planning process "
    "here </think> image here"
)

#: The reference transforms' pixel budget (14 * 14 * 9 * 1024).
MAX_PIXELS = 1_806_336

CAPABILITIES = frozenset({"generate", "understand", "chat", "query_states",
                          "train:understanding", "train:generation"})


def _interval(value: Any) -> tuple[float, float]:
    """``[start, end]`` or a bare start (end 1.0, as the reference's UI)."""
    if isinstance(value, (int, float)):
        return float(value), 1.0
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"cfg_interval must be [start, end] or a start value, got {value!r}") from None
    return lo, hi


def checked_image_size(settings: layout.Settings, image_size: int | None) -> int:
    """The output side in pixels: ``None`` is the checkpoint's largest up to 1024 (the
    release's 1024; a tiny test checkpoint's table is smaller)."""
    down = settings.latent_downsample
    largest = settings.max_latent_size * down
    if image_size is None:
        return min(1024, largest // down * down)
    if image_size % down or image_size < down:
        raise ValueError(f"image_size must be a positive multiple of {down}, got {image_size}")
    if image_size > largest:
        raise ValueError(f"image_size {image_size} exceeds the latent position table "
                         f"({largest} pixels)")
    return image_size


class BagelModel(Model):
    """A loaded BAGEL checkpoint (see the plugin README for every option)."""

    capabilities = CAPABILITIES

    def __init__(self, loaded: checkpoint.Loaded, folder: Path, *, image_size: int | None = None,
                 sampler: SamplerSettings | None = None, think_tokens: int = 1000,
                 answer_tokens: int = 500, max_batch: int | None = None,
                 vit_min_size: int = 224, options: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.settings = loaded.settings
        self.net = loaded.net
        self.vae = loaded.vae
        self.tokenizer = loaded.tokenizer
        self.tokens = loaded.tokens
        self.weights = loaded.weights
        self.sampler = sampler or SamplerSettings()
        image_size = checked_image_size(self.settings, image_size)
        for name, value in (("think_tokens", think_tokens), ("answer_tokens", answer_tokens)):
            if value < 2:
                raise ValueError(f"{name} must be at least 2 (it counts the start token), got {value}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.image_size = image_size
        self.think_tokens = think_tokens
        self.answer_tokens = answer_tokens
        self.max_batch = max_batch
        vit = self.net.vit_config
        self.vit_max_size = min(vit.image_size, vit.patch_size * self.settings.vit_max_num_patch_per_side)
        self.vit_min_size = min(vit_min_size, self.vit_max_size)
        self.options = dict(options or {})

    # --- loading / saving -----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype: str = "bfloat16", device: str | None = None,
                        device_map: Any = None, max_memory: Any = None, weights: str | None = None,
                        **options: Any) -> BagelModel:
        folder = Path(path)
        if folder.is_dir():  # a wrong image_size is refused before minutes of weight loading
            checked_image_size(layout.read_settings(folder, layout.weights_file(folder, weights)),
                               options.get("image_size"))
        loaded = checkpoint.load(path, dtype=dtype, device=device, device_map=device_map,
                                 max_memory=max_memory, weights=weights)
        return cls(loaded, folder, **options)

    def save_pretrained(self, path: str | Path) -> None:
        checkpoint.save(path, self.settings, self.net, self.vae, self.tokenizer)

    def identity(self) -> dict[str, Any]:
        if not hasattr(self, "_fingerprints"):  # hashed once; a 29 GB file is sampled, not read
            with open(self.weights, "rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                header_hash = hashlib.sha256(handle.read(size)).hexdigest()
            self._fingerprints = (header_hash, weights_fingerprint(self.weights))
        header_hash, fingerprint = self._fingerprints
        return {**super().identity(), "checkpoint": str(self.folder.resolve()),
                "weights": self.weights.name, "weights_header_sha256": header_hash,
                WEIGHTS_FINGERPRINT: fingerprint,
                "dtype": str(self.net.dtype).removeprefix("torch."),
                "image_size": self.image_size, "sampler": asdict(self.sampler),
                "think_tokens": self.think_tokens, "answer_tokens": self.answer_tokens}

    # --- tokens ---------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def _chunks(self, n: int) -> list[range]:
        size = self.max_batch or max(n, 1)
        return [range(i, min(i + size, n)) for i in range(0, n, size)]

    # --- contexts ---------------------------------------------------------------------------
    def _contexts(self, prompts: Sequence[str], think: bool, collect: bool = False
                  ) -> tuple[Context, Context, list[str | None], list[torch.Tensor] | None, torch.Tensor]:
        """(conditional context, CFG context, think texts, collected states of the last text
        block, that block's lengths) for one batch of prompts in one mode."""
        net, tokens = self.net, self.tokens
        b = len(prompts)
        ctx = net.empty(b)
        if think:
            ctx, _, _ = net.prefill_text(ctx, [self._encode(GEN_THINK_SYSTEM_PROMPT)] * b, tokens)
        uncond = ctx
        prompt_ids = [self._encode(p) for p in prompts]
        ctx, collected, lengths = net.prefill_text(ctx, prompt_ids, tokens, collect=collect and not think)
        thinks: list[str | None] = [None] * b
        if think:
            plans = net.greedy(ctx, self.think_tokens, tokens)
            thinks = [self._decode(ids) for ids in plans]
            ctx, collected, lengths = net.prefill_text(ctx, [self._encode(t) for t in thinks], tokens,
                                                       collect=collect)
        return ctx, uncond, thinks, collected, lengths

    def _noise(self, seeds: Sequence[int], count: int) -> torch.Tensor:
        """Each request's starting noise from its own generator (CPU, so any device agrees)."""
        dim = self.net.patch_latent_dim
        return torch.stack([torch.randn(count, dim, generator=torch.Generator().manual_seed(int(s) & (2**63 - 1)))
                            for s in seeds])

    # --- generate ---------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if any(r.temperature > 0 for r in requests):
            raise CapabilityError("BAGEL writes its plan greedily (no think_sampling); "
                                  "leave the requests' temperature at 0")
        out: list[Generation | None] = [None] * len(requests)
        for mode in ("normal", "think"):
            index = [i for i, r in enumerate(requests) if r.mode == mode]
            for chunk in self._chunks(len(index)):
                rows = [index[i] for i in chunk]
                for i, gen in zip(rows, self._generate([requests[i] for i in rows], mode == "think"),
                                  strict=True):
                    out[i] = gen
        unknown = sorted({r.mode for r, g in zip(requests, out, strict=True) if g is None})
        if unknown:
            raise ValueError(f"unknown generation mode(s) {unknown}; BAGEL knows normal and think")
        return [g for g in out if g is not None]

    @torch.inference_mode()
    def _generate(self, requests: Sequence[GenerationRequest], think: bool) -> list[Generation]:
        net = self.net
        cond, uncond, thinks, _, _ = self._contexts([r.prompt for r in requests], think)
        rows, cols, pos = net.latent_grid(self.image_size, self.image_size)
        noise = self._noise([r.seed for r in requests], rows * cols)
        latents = net.sample(cond, uncond, noise, pos, self.sampler, self.tokens)
        grid = unpatchify(latents, rows, cols, net.latent_patch_size, net.latent_channels)
        vae_device = next(self.vae.parameters()).device
        pixels = self.vae.decode(grid.to(vae_device))
        return [Generation(image=to_image(px), think=t) for px, t in zip(pixels, thinks, strict=True)]

    # --- understand / chat -------------------------------------------------------------------
    def _vit_tensor(self, image: Image) -> torch.Tensor:
        """The reference's two resizes: first the VAE-side policy (the inferencer resizes every
        input image with it; 1024 / 512 / 16 for the release), then the ViT's (980 / 224 / 14)."""
        down = self.settings.latent_downsample
        vae_max = self.settings.max_latent_size * down
        image = rgb(image)
        first = target_size(image.size[0], image.size[1], vae_max, vae_max // 2, down, MAX_PIXELS)
        if first != image.size:
            image = image.resize(first, PILImage.Resampling.BICUBIC)
        p = self.net.vit_config.patch_size
        size = target_size(image.size[0], image.size[1], self.vit_max_size, self.vit_min_size, p, MAX_PIXELS)
        return to_tensor(image, size)

    @torch.inference_mode()
    def understand(self, images: Sequence[Image], questions: Sequence[str]) -> list[str]:
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images for {len(questions)} questions")
        answers: list[str] = []
        for chunk in self._chunks(len(images)):
            ctx = self.net.empty(len(chunk))
            ctx = self.net.prefill_vit(ctx, [self._vit_tensor(images[i]) for i in chunk], self.tokens)
            ctx, _, _ = self.net.prefill_text(ctx, [self._encode(questions[i]) for i in chunk], self.tokens)
            answers += [self._decode(ids) for ids in self.net.greedy(ctx, self.answer_tokens, self.tokens)]
        return answers

    @torch.inference_mode()
    def chat(self, prompts: Sequence[str]) -> list[str]:
        answers: list[str] = []
        for chunk in self._chunks(len(prompts)):
            ctx, _, _ = self.net.prefill_text(self.net.empty(len(chunk)),
                                              [self._encode(prompts[i]) for i in chunk], self.tokens)
            answers += [self._decode(ids) for ids in self.net.greedy(ctx, self.answer_tokens, self.tokens)]
        return answers

    # --- probes -----------------------------------------------------------------------------
    @torch.inference_mode()
    def query_states(self, requests: Sequence[GenerationRequest]) -> list[QueryStates]:
        """Residual stream of every layer (embeddings first, before the final norm) at the last
        context position before the image: the ``<|im_end|>`` closing the prompt (normal) or
        the plan (think)."""
        out: list[QueryStates | None] = [None] * len(requests)
        for mode in ("normal", "think"):
            index = [i for i, r in enumerate(requests) if r.mode == mode]
            for chunk in self._chunks(len(index)):
                rows = [index[i] for i in chunk]
                _, _, thinks, collected, lengths = self._contexts(
                    [requests[i].prompt for i in rows], mode == "think", collect=True)
                assert collected is not None
                for j, i in enumerate(rows):
                    last = int(lengths[j]) - 1
                    hidden = torch.stack([h[j, last].float().cpu() for h in collected])[:, None, :]
                    out[i] = QueryStates(hidden=hidden, labels=("context",), think=thinks[j])
        if any(o is None for o in out):
            raise ValueError("query_states: unknown generation mode; BAGEL knows normal and think")
        return [o for o in out if o is not None]

    @torch.inference_mode()
    def logit_lens(self, hidden: torch.Tensor) -> torch.Tensor:
        lm = self.net.language_model
        logits = lm.logits(hidden.to(lm.model.norm.weight.device, self.net.dtype))
        return torch.softmax(logits.float(), dim=-1)

    def vocabulary(self) -> dict[str, int]:
        return dict(self.tokenizer.get_vocab())

    # --- training ---------------------------------------------------------------------------
    def trainable_parameters(self, part: str) -> list[torch.nn.Parameter]:
        """``understanding``: the decoder's understanding expert, embeddings, LM head, ViT and
        connector. ``generation``: every ``_moe_gen`` parameter, the timestep embedder and the
        latent projections. The autoencoder and the fixed position tables are never trained."""
        net = self.net
        if part == "understanding":
            params = [p for n, p in net.language_model.named_parameters() if "moe_gen" not in n]
            params += list(net.vit_model.parameters()) + list(net.connector.parameters())
        elif part == "generation":
            params = [p for n, p in net.language_model.named_parameters() if "moe_gen" in n]
            for module in (net.time_embedder, net.vae2llm, net.llm2vae):
                params += list(module.parameters())
        else:
            raise CapabilityError(f"BAGEL has no trainable part {part!r}; use understanding or generation")
        return [p for p in params if p.requires_grad]

    def text_loss(self, conversations: Sequence[Conversation]) -> torch.Tensor:
        """Mean cross-entropy over assistant tokens: each turn is ``<|im_start|> text <|im_end|>``
        and an assistant turn learns to predict its text and the closing ``<|im_end|>``."""
        net, tokens = self.net, self.tokens
        device = net.main_device
        rows, labels = [], []
        for conv in conversations:
            ids: list[int] = []
            lab: list[int] = []
            for turn in conv.turns:
                seg = [tokens.bos, *self._encode(turn.text), tokens.eos]
                ids += seg
                lab += [*seg[1:], -100] if turn.role == "assistant" else [-100] * len(seg)
            rows.append(ids)
            labels.append(lab)
        if not any(x != -100 for lab in labels for x in lab):
            raise ValueError("text_loss: no assistant tokens in these conversations")
        n = max(len(r) for r in rows)
        ids_t = torch.full((len(rows), n), tokens.eos, dtype=torch.long, device=device)
        lab_t = torch.full((len(rows), n), -100, dtype=torch.long, device=device)
        for i, (r, lab) in enumerate(zip(rows, labels, strict=True)):
            ids_t[i, : len(r)] = torch.tensor(r)
            lab_t[i, : len(lab)] = torch.tensor(lab)
        lengths = torch.tensor([len(r) for r in rows], device=device)
        valid = torch.arange(n, device=device)[None, :] < lengths[:, None]
        positions = torch.arange(n, device=device)[None, :].expand(len(rows), n)
        hidden, _, _ = net.run(net.empty(len(rows)), net.embed(ids_t), positions, valid, causal=True)
        logits = net.language_model.logits(hidden)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                               lab_t.to(logits.device).reshape(-1), ignore_index=-100)

    def generation_loss(self, prompts: Sequence[str], images: Sequence[Image], seed: int = 0,
                        condition: torch.Tensor | None = None) -> torch.Tensor:
        """Flow-matching velocity loss on VAE latents, as the reference trains it: t = shift(
        sigmoid(N(0,1))), x_t = (1 - t) x_0 + t noise, target noise - x_0. All randomness
        (posterior sample, times, noise) comes from one generator seeded with ``seed``."""
        if condition is not None:
            raise self._missing("condition")
        if len(prompts) != len(images):
            raise ValueError(f"{len(prompts)} prompts for {len(images)} images")
        net = self.net
        gen = torch.Generator().manual_seed(int(seed))
        size = (self.image_size, self.image_size)
        pixels = torch.stack([to_tensor(img, size) for img in images])
        vae_device = next(self.vae.parameters()).device
        with torch.no_grad():
            z = self.vae.encode(pixels.to(vae_device), generator=gen).float().cpu()
        x0 = torch.stack([patchify(zi, net.latent_patch_size) for zi in z])
        t = shift_time(torch.sigmoid(torch.randn(len(images), generator=gen)), self.sampler.shift)
        noise = torch.randn(x0.shape, generator=gen)
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
        target = noise - x0
        ctx, _, _ = net.prefill_text(net.empty(len(prompts)), [self._encode(p) for p in prompts], self.tokens)
        _, _, pos = net.latent_grid(self.image_size, self.image_size)
        v = net.velocity(ctx, xt, t, pos, self.tokens)
        return F.mse_loss(v, target.to(v.device))
