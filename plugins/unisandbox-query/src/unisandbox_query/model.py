"""The engine-facing model: wraps a :class:`QueryUMM` in the unisandbox Model protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL.Image import Image
from unisandbox.factories import check_number
from unisandbox.paths import weights_fingerprint
from unisandbox.protocols import GENERATION_PARTS, WEIGHTS_FINGERPRINT, Model, QueryStates
from unisandbox.records import Conversation, Generation, GenerationRequest

from .modeling_query_umm import WEIGHTS_NAME, QueryUMM
from .plugin import CAPABILITIES  # one list: the spec the registry shows and the class agree

#: sampling precisions a user can name (``--model-arg precision=...``) and their dtypes
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class QueryModel(Model):
    """A query-based UMM: generate (normal / think), understand, chat, probes, training."""

    capabilities = CAPABILITIES

    def __init__(self, umm: QueryUMM, *, source: str = "", batch_size: int = 64,
                 steps: int | None = None, cfg_scale: float | None = None,
                 precision: str = "float32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        check_number("batch_size", batch_size, whole=True, low=1)
        check_number("steps", steps, whole=True, low=1)
        check_number("cfg_scale", cfg_scale, whole=False, low=0)
        self.umm = umm
        self.source = source
        self.batch_size = batch_size
        self.steps = steps
        self.cfg_scale = cfg_scale
        self.precision = precision  # the denoiser's at sampling; training is always fp32

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu",
                        query_expert_rank: int | None = None, query_layers: int | None = None,
                        query_expert_scope: str | None = None, **options: Any) -> QueryModel:
        umm = QueryUMM.from_pretrained(path, device=device, query_expert_rank=query_expert_rank,
                                       query_layers=query_layers, query_expert_scope=query_expert_scope)
        return cls(umm, source=str(path), **options)

    def identity(self) -> dict[str, Any]:
        config = self.umm.config
        parts = config.generation_parts()
        return {**super().identity(), "checkpoint": self.source,
                WEIGHTS_FINGERPRINT: self._weights(),
                "steps": self.steps or config.sample_steps,
                "cfg_scale": config.cfg_scale if self.cfg_scale is None else self.cfg_scale,
                "precision": self.precision,
                # what the generation path was given to train: a resumed run must match it
                **({GENERATION_PARTS: parts} if parts else {})}

    def _weights(self) -> str | None:
        """The loaded weights file's fingerprint (hashed once): a run resumed on other weights
        (a retrained checkpoint in the same folder) is refused."""
        if not hasattr(self, "_fingerprint"):
            file = Path(self.source) / WEIGHTS_NAME if self.source else None
            self._fingerprint = weights_fingerprint(file) if file is not None and file.is_file() else None
        return self._fingerprint

    # --- generate / understand / chat ----------------------------------------------------
    def contexts(self, requests: Sequence[GenerationRequest]) -> tuple[list[str], list[str | None]]:
        """The full context each request conditions on, and the reasoning (think mode)."""
        thinks: list[str | None] = [None] * len(requests)
        think_idx = [i for i, r in enumerate(requests) if r.mode == "think"]
        if think_idx:
            asked = [requests[i] for i in think_idx]
            written = self.umm.think([r.prompt for r in asked], [r.temperature for r in asked],
                                     [r.seed for r in asked])
            for i, text in zip(think_idx, written, strict=True):
                thinks[i] = text
        contexts = [self.umm.generation_context(r.prompt, t) for r, t in zip(requests, thinks, strict=True)]
        return contexts, thinks

    @torch.no_grad()
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.umm.eval()
        out: list[Generation] = []
        for batch in _batches(list(requests), self.batch_size):
            contexts, thinks = self.contexts(batch)
            x = self.umm.sample(self.umm.condition(contexts), [r.seed for r in batch],
                                steps=self.steps, cfg_scale=self.cfg_scale,
                                dtype=PRECISIONS[self.precision])
            out += [Generation(image=im, think=t)
                    for im, t in zip(self.umm.to_images(x), thinks, strict=True)]
        return out

    @torch.no_grad()
    def understand(self, images: Sequence[Image], questions: Sequence[str]) -> list[str]:
        self.umm.eval()
        pairs = list(zip(images, questions, strict=True))
        return [a for b in _batches(pairs, self.batch_size)
                for a in self.umm.understand([i for i, _ in b], [q for _, q in b])]

    @torch.no_grad()
    def chat(self, prompts: Sequence[str]) -> list[str]:
        self.umm.eval()
        return [a for b in _batches(list(prompts), self.batch_size) for a in self.umm.chat(b)]

    # --- probes --------------------------------------------------------------------------
    @torch.no_grad()
    def query_states(self, requests: Sequence[GenerationRequest]) -> list[QueryStates]:
        """Per request: every layer's residual stream (embeddings first, the last layer before
        the final norm) at the last text token and at each query."""
        self.umm.eval()
        q = self.umm.config.num_queries
        labels = ("baseline", *(f"q{i}" for i in range(q)))
        out: list[QueryStates] = []
        for batch in _batches(list(requests), self.batch_size):
            contexts, thinks = self.contexts(batch)
            hidden = self._residual_stream(contexts)  # [L+1, B, T, W]
            for row, think in enumerate(thinks):
                out.append(QueryStates(hidden=hidden[:, row, -(q + 1):].float().cpu(),
                                       labels=labels, think=think))
        return out

    def _residual_stream(self, contexts: Sequence[str]) -> torch.Tensor:
        """Every layer's hidden states for [context, queries], the last one *before* the final
        norm: transformers returns it after the norm, and ``logit_lens`` applies the norm."""
        before_norm: list[torch.Tensor] = []
        hook = self.umm.lm.model.norm.register_forward_hook(
            lambda _module, args, _output: before_norm.append(args[0]))
        try:
            layers = list(self.umm.query_hidden(contexts))
        finally:
            hook.remove()
        layers[-1] = before_norm[-1]
        return torch.stack(layers)

    @torch.no_grad()
    def logit_lens(self, hidden: torch.Tensor) -> torch.Tensor:
        lm = self.umm.lm
        normed = lm.model.norm(hidden.to(self.umm.device))
        return torch.softmax(lm.lm_head(normed).float(), dim=-1).cpu()

    def vocabulary(self) -> dict[str, int]:
        return dict(self.umm.tokenizer.get_vocab())

    # --- training ------------------------------------------------------------------------
    def trainable_parameters(self, part: str) -> list[torch.nn.Parameter]:
        if part == "understanding":
            return self.umm.understanding_parameters()
        if part == "generation":
            return self.umm.generation_parameters()
        raise ValueError(f"unknown part {part!r}; expected understanding or generation")

    def text_loss(self, conversations: Sequence[Conversation]) -> torch.Tensor:
        """Cross-entropy on every assistant turn, each conditioned on the turns before it."""
        prompts, answers = [], []
        for conv in conversations:
            history = ""
            for turn in conv.turns:
                if turn.role == "user":
                    history = f"{history} {self.umm.chat_text(turn.text)}".strip()
                else:
                    prompts.append(history)
                    answers.append(turn.text)
                    history = f"{history} {turn.text} {self.umm.tokenizer.eos_token}"
        return self.umm.text_loss(prompts, answers)

    def generation_loss(self, prompts: Sequence[str], images: Sequence[Image],
                        seed: int = 0, condition: torch.Tensor | None = None) -> torch.Tensor:
        contexts = [self.umm.generation_context(p) for p in prompts]
        generator = torch.Generator().manual_seed(seed)
        return self.umm.flow_loss(contexts, self.umm.pixels(images), generator, condition)

    def generation_condition(self, prompts: Sequence[str],
                             thinks: Sequence[str | None] | None = None) -> torch.Tensor:
        """The connector's output for each context ``[B, queries, width]`` (gradients flow
        when the caller enables them)."""
        thinks = [None] * len(prompts) if thinks is None else thinks
        return self.umm.condition([self.umm.generation_context(p, t)
                                   for p, t in zip(prompts, thinks, strict=True)])

    def save_pretrained(self, path: str | Path) -> None:
        self.umm.save_pretrained(path)
