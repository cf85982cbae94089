"""The unisandbox entry point: registers the ``bagel`` model. Imports nothing heavy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unisandbox.hookspecs import hookimpl
from unisandbox.specs import ModelSpec

PLUGIN_API_VERSION = 1


def bagel(path: str, dtype: str = "bfloat16", device: str | None = None, device_map: Any = None,
          max_memory: Any = None, weights: str | None = None, image_size: int = 1024,
          steps: int = 50, timestep_shift: float = 3.0, cfg_text_scale: float = 4.0,
          cfg_interval: Any = (0.4, 1.0), cfg_renorm_type: str = "global",
          cfg_renorm_min: float = 0.0, think_tokens: int = 1000, answer_tokens: int = 500,
          max_batch: int | None = None) -> Any:
    """Load a BAGEL checkpoint folder (release layout) with these inference settings.

    ``path``: local folder (llm_config.json, vit_config.json, config.json, ae.safetensors,
    ema.safetensors or model.safetensors, tokenizer). ``dtype``: bfloat16 | float32 | float16.
    ``device`` ("cuda", "cuda:1", "cpu"; default cuda when present) or ``device_map`` ("auto",
    "balanced", or a module -> device mapping) with optional ``max_memory``. ``weights``: a
    weights file name to load instead of the default choice. Sampler: ``steps`` grid points,
    ``timestep_shift``, ``cfg_text_scale``, ``cfg_interval`` [start, end],
    ``cfg_renorm_type`` (global | channel | text_channel), ``cfg_renorm_min``. Text:
    ``think_tokens`` and ``answer_tokens`` (greedy budgets, counting the start token).
    ``image_size``: square output side in pixels; ``max_batch``: split larger batches.
    """
    from .model import BagelModel, _interval
    from .sampler import SamplerSettings

    sampler = SamplerSettings(steps=int(steps), shift=float(timestep_shift),
                              cfg_text_scale=float(cfg_text_scale), cfg_interval=_interval(cfg_interval),
                              cfg_renorm_type=str(cfg_renorm_type), cfg_renorm_min=float(cfg_renorm_min))
    return BagelModel.from_pretrained(
        path, dtype=dtype, device=device, device_map=device_map, max_memory=max_memory,
        weights=weights, image_size=int(image_size), sampler=sampler,
        think_tokens=int(think_tokens), answer_tokens=int(answer_tokens),
        max_batch=None if max_batch is None else int(max_batch))


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(ModelSpec(
        name="bagel",
        factory=bagel,
        description="BAGEL Mixture-of-Transformers UMM from a local checkpoint folder (release layout)",
        capabilities={"generate", "understand", "chat", "query_states",
                      "train:understanding", "train:generation"},
    ))
