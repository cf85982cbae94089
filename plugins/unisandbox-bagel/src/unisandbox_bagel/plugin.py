"""The unisandbox entry point: registers the ``bagel`` model. Imports nothing heavy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unisandbox.hookspecs import hookimpl
from unisandbox.specs import ModelSpec

PLUGIN_API_VERSION = 1


def bagel(path: str, dtype: str = "bfloat16", device: str | None = None, device_map: Any = None,
          max_memory: Any = None, weights: str | None = None, image_size: int | None = None,
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
    ``image_size``: square output side in pixels (default: the checkpoint's largest, up to
    1024); ``max_batch``: split larger batches.
    """
    from unisandbox.factories import check_number

    # checked here, by name, before minutes of weight loading ("abc", 2.9, inf, nan)
    for name, value, whole, low in (
            ("image_size", image_size, True, 1), ("steps", steps, True, 1),
            ("think_tokens", think_tokens, True, 2), ("answer_tokens", answer_tokens, True, 2),
            ("max_batch", max_batch, True, 1), ("timestep_shift", timestep_shift, False, 1e-6),
            ("cfg_text_scale", cfg_text_scale, False, 0), ("cfg_renorm_min", cfg_renorm_min, False, 0)):
        check_number(name, value, whole=whole, low=low)
    if device not in (None, "", "auto"):
        from unisandbox.factories import check_device

        check_device(device)
    from .model import BagelModel, _interval
    from .sampler import SamplerSettings

    sampler = SamplerSettings(steps=steps, shift=float(timestep_shift),
                              cfg_text_scale=float(cfg_text_scale), cfg_interval=_interval(cfg_interval),
                              cfg_renorm_type=str(cfg_renorm_type), cfg_renorm_min=float(cfg_renorm_min))
    return BagelModel.from_pretrained(
        path, dtype=dtype, device=device, device_map=device_map, max_memory=max_memory,
        weights=weights, image_size=image_size, sampler=sampler,
        think_tokens=think_tokens, answer_tokens=answer_tokens, max_batch=max_batch)


bagel.argument_notes = {  # type: ignore[attr-defined]
    "image_size": "the checkpoint's largest, up to 1024", "device": "cuda when present, else cpu",
    "device_map": "auto, balanced or a module -> device mapping (accelerate)",
    "weights": "model.safetensors, else ema.safetensors", "max_batch": "no split"}


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(ModelSpec(
        name="bagel",
        factory=bagel,
        description="BAGEL Mixture-of-Transformers UMM from a local checkpoint folder (release layout)",
        capabilities={"generate", "understand", "chat", "query_states",
                      "train:understanding", "train:generation"},
    ))
