"""DeepSeek's Janus (transformers' ``JanusForConditionalGeneration``) behind unisandbox's Model.

Understanding and chat are the processor + ``generate(generation_mode="text")``, greedy.
Generation is ``generate(generation_mode="image")`` (576 VQ codes at 384 px for the released
models) decoded by the VQ decoder. Janus' image loop samples with the global torch RNG, so a
sample's image would depend on its batch neighbours; :class:`SeededSampler` does the
guidance, temperature and sampling itself with one ``torch.Generator`` per sample and hands
``generate`` a one-hot distribution that its greedy step reads off. The VQ decoder then runs
one image at a time, because batched convolutions round differently.

Think mode (our protocol; Janus has none of its own): the language model first writes a short
plan, greedy, for ``prompt + THINK``; the image is then generated for the user turn
``prompt + "\\n" + plan``, so the generator is conditioned on the prompt and the whole plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import (
    GenerationConfig,
    JanusForConditionalGeneration,
    JanusProcessor,
    LogitsProcessor,
    LogitsProcessorList,
)
from unisandbox.factories import check_device
from unisandbox.paths import weights_fingerprint
from unisandbox.protocols import WEIGHTS_FINGERPRINT, Model
from unisandbox.records import Generation, GenerationRequest

THINK = ("Before drawing, work out what the picture must show: solve any arithmetic, rules or "
         "facts in the request, then say in one short sentence exactly what to draw.")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class SeededSampler(LogitsProcessor):
    """CFG + temperature + per-sample ``torch.Generator`` sampling over the [cond; uncond] rows."""

    def __init__(self, seeds: Sequence[int], device: torch.device, cfg: float, temperature: float):
        self.generators = [torch.Generator(device=device).manual_seed(int(s) & (2**63 - 1)) for s in seeds]
        self.cfg, self.temperature = cfg, temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        n = len(self.generators)
        cond, uncond = scores[:n].float(), scores[n:].float()
        logits = uncond + self.cfg * (cond - uncond)
        if self.temperature > 0:
            probs = torch.softmax(logits / self.temperature, dim=-1)
            picks = torch.cat([torch.multinomial(p[None], 1, generator=g)[0]
                               for p, g in zip(probs, self.generators, strict=True)])
        else:
            picks = logits.argmax(dim=-1)
        return torch.full_like(logits, float("-inf")).scatter_(1, picks[:, None], 0.0)


class JanusUMM(Model):
    """One Janus checkpoint with its sampling settings (see ``plugin.janus`` for the options)."""

    capabilities = frozenset({"generate", "understand", "chat"})

    def __init__(self, net: JanusForConditionalGeneration, processor: JanusProcessor, folder: Path, *,
                 cfg: float = 5.0, temperature: float = 1.0, think_tokens: int = 64,
                 answer_tokens: int = 32, max_batch: int = 16) -> None:
        if processor.chat_template is None:
            raise ValueError(f"{folder}: the processor has no chat template (chat_template.jinja)")
        if cfg < 1 or temperature < 0 or min(think_tokens, answer_tokens, max_batch) < 1:
            raise ValueError("need cfg >= 1, temperature >= 0, think_tokens, answer_tokens, max_batch >= 1")
        self.net, self.processor, self.folder = net, processor, folder
        self.cfg, self.temperature = float(cfg), float(temperature)
        self.think_tokens, self.answer_tokens, self.max_batch = think_tokens, answer_tokens, max_batch
        tok = processor.tokenizer
        self.ids = {"bos_token_id": tok.bos_token_id, "pad_token_id": tok.pad_token_id,
                    "eos_token_id": tok.eos_token_id}
        # generate() reads BOS, pad and BOI from its config to build the unconditional CFG rows;
        # guidance_scale=1 because SeededSampler applies the guidance itself
        boi = {"boi_token_id": tok.convert_tokens_to_ids(processor.image_start_token)}
        self.image_config = GenerationConfig(**self.ids, do_sample=False, guidance_scale=1.0,
                                             generation_kwargs=boi)
        images = processor.image_processor  # decoded pixels are in its normalised space
        self.mean, self.std = (torch.as_tensor(v, dtype=torch.float32).reshape(-1).expand(3).reshape(1, 1, 1, 3)
                               for v in (images.image_mean, images.image_std))

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | None = None, dtype: str = "auto",
                        trust_remote_code: bool = False, **settings: Any) -> JanusUMM:
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder}: not a checkpoint folder (no config.json)")
        device = check_device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be auto or one of {sorted(DTYPES)}, got {dtype!r}")
        remote = {"local_files_only": True, "trust_remote_code": bool(trust_remote_code)}
        try:
            processor = JanusProcessor.from_pretrained(folder, **remote)
            net = JanusForConditionalGeneration.from_pretrained(folder, dtype=DTYPES[dtype],
                                                                use_safetensors=True, **remote)
        except Exception as exc:  # missing files, a damaged config or weights file, a foreign folder
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            raise ValueError(f"{folder}: not a loadable Janus checkpoint in transformers' format "
                             f"({type(exc).__name__}: {first})") from None
        return cls(net.to(device).eval(), processor, folder, **settings)

    def identity(self) -> dict[str, Any]:
        headers = hashlib.sha256((self.folder / "config.json").read_bytes())
        values = hashlib.sha256()
        for weights in sorted(self.folder.glob("*.safetensors")):
            with open(weights, "rb") as handle:  # the header lists every tensor's name, dtype, offsets
                headers.update(handle.read(int.from_bytes(handle.read(8), "little")))
            values.update(f"{weights.name}:{weights_fingerprint(weights)}\n".encode())  # a retrained copy differs
        return {**super().identity(), "checkpoint": str(self.folder.resolve()),
                "config_and_weight_headers_sha256": headers.hexdigest(),
                WEIGHTS_FINGERPRINT: "shards:" + values.hexdigest(),
                "dtype": str(self.net.dtype).removeprefix("torch."), "cfg": self.cfg,
                "temperature": self.temperature, "think_tokens": self.think_tokens,
                "answer_tokens": self.answer_tokens, "think_protocol": hashlib.sha256(THINK.encode()).hexdigest()[:12]}

    # --- text: chat, understand, plan -----------------------------------------------------------
    def _turn(self, text: str, image: bool = False) -> str:
        content = [{"type": "image"}] if image else []
        messages = [{"role": "user", "content": [*content, {"type": "text", "text": text}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True)

    def _greedy(self, texts: list[str], images: Sequence[Image.Image] | None, budget: int) -> list[str]:
        out: list[str] = []
        for i in range(0, len(texts), self.max_batch):
            batch = self.processor(text=texts[i:i + self.max_batch], padding=True, generation_mode="text",
                                   images=None if images is None else list(images[i:i + self.max_batch]),
                                   return_tensors="pt").to(self.net.device)
            if "pixel_values" in batch:
                batch["pixel_values"] = batch["pixel_values"].to(self.net.dtype)
            start = batch["input_ids"].shape[1]  # (max_new_tokens would clash with the default max_length)
            greedy = GenerationConfig(**self.ids, do_sample=False, max_length=start + budget)
            with torch.inference_mode():
                ids = self.net.generate(**batch, generation_mode="text", generation_config=greedy)
            new = ids[:, start:]
            out += [t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True)]
        return out

    def chat(self, prompts: Sequence[str]) -> list[str]:
        return self._greedy([self._turn(p) for p in prompts], None, self.answer_tokens)

    def understand(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        rgb = [im.convert("RGB") for im in images]
        return self._greedy([self._turn(q, image=True) for q in questions], rgb, self.answer_tokens)

    def plan(self, prompts: Sequence[str]) -> list[str]:
        """Think mode's first step: the model's own short plan for each prompt, greedy."""
        return self._greedy([self._turn(f"{p}\n{THINK}") for p in prompts], None, self.think_tokens)

    # --- images ---------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        unknown = {r.mode for r in requests} - {"normal", "think"}
        if unknown:
            raise ValueError(f"unknown generation mode(s) {sorted(unknown)}; use normal or think")
        thinking = [i for i, r in enumerate(requests) if r.mode == "think"]
        plans: list[str | None] = [None] * len(requests)
        for i, text in zip(thinking, self.plan([requests[i].prompt for i in thinking]), strict=True):
            plans[i] = text
        turns = [self._turn(r.prompt if p is None else f"{r.prompt}\n{p}") for r, p in zip(requests, plans, strict=True)]
        images: list[Image.Image] = []
        for i in range(0, len(turns), self.max_batch):
            images += self._draw(turns[i:i + self.max_batch], [r.seed for r in requests[i:i + self.max_batch]])
        return [Generation(image=im, think=p) for im, p in zip(images, plans, strict=True)]

    def _draw(self, turns: list[str], seeds: list[int]) -> list[Image.Image]:
        batch = self.processor(text=turns, padding=True, generation_mode="image", return_tensors="pt").to(self.net.device)
        sampler = SeededSampler(seeds, self.net.device, self.cfg, self.temperature)
        with torch.inference_mode():
            codes = self.net.generate(**batch, generation_mode="image", generation_config=self.image_config,
                                      logits_processor=LogitsProcessorList([sampler]))
            # one at a time: an image must depend on its own prompt and seed only
            pixels = torch.cat([self.net.decode_image_tokens(c[None]) for c in codes]).float().cpu()
        # undo the image processor's normalisation (what processor.postprocess does, on any backend)
        rgb = ((pixels * self.std + self.mean) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        return [Image.fromarray(a) for a in rgb]
