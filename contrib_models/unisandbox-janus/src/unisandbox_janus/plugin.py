"""The unisandbox entry point: registers the ``janus`` model. Imports nothing heavy (no torch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unisandbox.hookspecs import hookimpl
from unisandbox.specs import ModelSpec

PLUGIN_API_VERSION = 1


def janus(path: str, device: str | None = None, dtype: str = "auto", cfg: float = 5.0,
          temperature: float = 1.0, think_tokens: int = 64, answer_tokens: int = 32,
          max_batch: int = 16, trust_remote_code: bool = False) -> Any:
    """Load a Janus / Janus-Pro checkpoint folder in transformers' format.

    ``path``: local folder (config.json, safetensors, tokenizer, processor with chat template),
    read with ``local_files_only=True``. ``device``: cuda / cuda:N / cpu (default cuda when
    present). ``dtype``: auto (bfloat16 on cuda, float32 on cpu) | float32 | bfloat16 | float16.
    ``cfg``: classifier-free guidance weight; ``temperature``: image-token sampling (0 = greedy).
    ``think_tokens``: the plan's budget in think mode; ``answer_tokens``: chat / understand
    budget; ``max_batch``: split larger batches. ``trust_remote_code`` stays off unless asked.
    """
    from unisandbox.factories import check_number

    from .model import JanusUMM

    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"path must name a checkpoint folder, got {path!r}")
    check_number("cfg", cfg, whole=False, low=1)
    check_number("temperature", temperature, whole=False, low=0)
    for name, value in (("think_tokens", think_tokens), ("answer_tokens", answer_tokens),
                        ("max_batch", max_batch)):
        check_number(name, value, whole=True, low=1)
    return JanusUMM.from_pretrained(
        path, device=device, dtype=str(dtype), trust_remote_code=_flag(trust_remote_code),
        cfg=float(cfg), temperature=float(temperature), think_tokens=think_tokens,
        answer_tokens=answer_tokens, max_batch=max_batch)


janus.argument_notes = {  # type: ignore[attr-defined]
    "device": "cuda when present, else cpu", "path": "a local checkpoint folder"}


def _flag(value: Any) -> bool:
    """``--model-arg trust_remote_code=true`` may arrive as a bool or a string."""
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"trust_remote_code must be true or false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    return bool(value)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(ModelSpec(
        name="janus",
        factory=janus,
        description="DeepSeek Janus / Janus-Pro (transformers JanusForConditionalGeneration) from a "
                    "local folder; think = a greedy plan, then the image for prompt + plan",
        capabilities={"generate", "understand", "chat"},
    ))
