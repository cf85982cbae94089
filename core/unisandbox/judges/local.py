"""``vlm-local``: the two-stage protocol on a transformers image-text-to-text model on disk.

Any folder that ``AutoProcessor`` and ``AutoModelForImageTextToText`` load (Qwen2-VL,
Qwen2.5-VL and the like) works; nothing is fetched (``local_files_only``) and no remote code
runs unless ``trust_remote_code=true`` is given. Without torchvision a Qwen2-VL-family
processor is loaded without its video part (:func:`load_without_video`). The model loads on the first ``judge`` call,
so building the judge (and its identity, for the cache) stays cheap. Each stage is decoded
greedily in batches of ``batch_size``, left-padded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..protocols.judge import Judge
from ..records import JudgeItem, Verdict
from .templates import templates_identity
from .vlm import PROTOCOL_VERSION, ChatRequest, Reply, TwoStage, judge_batched

_DTYPES = ("auto", "float32", "bfloat16", "float16")
_EDGE = 4 << 20  # bytes of each weight file's head and tail in the fingerprint


def folder_fingerprint(path: Path) -> str:
    """A cheap content hash of a checkpoint folder: config files in full, weights sampled.

    Weight files contribute their name, size and first and last 4 MiB: a fine-tuned
    checkpoint changes those bytes, and a 16 GB model is fingerprinted in milliseconds. (Not
    ``paths.weights_fingerprint``: this identity keys every verdict judged with it, and a new
    scheme would refuse resumes of runs judged before; it judges a judge folder, not a model.)
    """
    h = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(file.name.encode() + b"\0")
        size = file.stat().st_size
        h.update(str(size).encode() + b"\0")
        with open(file, "rb") as handle:
            if file.suffix in (".json", ".jinja", ".txt") or size <= 2 * _EDGE:
                h.update(handle.read())
            else:
                h.update(handle.read(_EDGE))
                handle.seek(size - _EDGE)
                h.update(handle.read(_EDGE))
    return h.hexdigest()


def load_without_video(path: Path, kwargs: dict[str, Any], error: Exception) -> Any:
    """The folder's processor without its video processor, when only that part needs torchvision.

    transformers 5.x builds every video processor on torchvision, and a processor with a
    video slot (Qwen2-VL, Qwen2.5-VL) cannot be built at all without it, although the judge
    sends only images and their image processors fall back to PIL. The built-in processor
    class of the model type (``AutoProcessor``'s own last resort) is subclassed with the
    ``video_processor`` slot dropped (sub-processors are read from ``__init__``'s
    signature) and loaded through its own ``from_pretrained``: same tokenizer, image
    processor, chat template and placeholder expansion. With torchvision present, with
    remote code allowed (the folder's own processor must not be swapped for the built-in
    one) or for any other failure, ``error`` is re-raised.
    """
    from transformers import AutoConfig
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
    from transformers.utils import is_torchvision_available

    if is_torchvision_available() or kwargs.get("trust_remote_code"):
        raise error
    try:
        base = PROCESSOR_MAPPING[type(AutoConfig.from_pretrained(path, **kwargs))]
    except (KeyError, ValueError, OSError):
        raise error from None
    if not base.__module__.startswith("transformers.") or "video_processor" not in base.get_attributes():
        raise error

    class ImageOnly(base):  # type: ignore[misc,valid-type]
        # ProcessorMixin pairs positional sub-processors with this signature's names, so the
        # None the base passes for the video slot is dropped, not checked as a processor
        def __init__(self, image_processor: Any = None, tokenizer: Any = None,
                     chat_template: Any = None, **extra: Any) -> None:
            base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template,
                          **extra)

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"{base.__name__}ImageOnly"
    return ImageOnly.from_pretrained(path, **kwargs)


class LocalVLMJudge(Judge):
    """Judge with a local VLM folder (``path``); ``device`` auto = CUDA when present."""

    def __init__(
        self,
        path: str,
        batch_size: int = 8,
        max_new_tokens: int = 256,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        tasks: Sequence[Any] = (),
    ) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ValueError(f"{self.path} is not a model folder (no config.json)")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be at least 1")
        self.batch_size, self.max_new_tokens = int(batch_size), int(max_new_tokens)
        self.device_name, self.dtype_name = device, dtype
        self.trust_remote_code = bool(trust_remote_code)
        self.protocol = TwoStage.for_tasks(tasks)
        self._identity: dict[str, Any] | None = None
        self.model: Any = None
        self.processor: Any = None

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = {
                "kind": "vlm-local", "model": self.path.resolve().name,
                "fingerprint": folder_fingerprint(self.path),
                "max_new_tokens": self.max_new_tokens, "decoding": "greedy",
                "protocol": PROTOCOL_VERSION,
                "templates": templates_identity(self.protocol.templates),
            }
        return self._identity

    # --- loading ------------------------------------------------------------------------
    def load(self) -> None:
        """Load processor and model (idempotent); the first ``judge`` call does it."""
        if self.model is not None:
            return
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = self.device_name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.dtype_name
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        kwargs = {"local_files_only": True, "trust_remote_code": self.trust_remote_code}
        try:
            try:
                processor = AutoProcessor.from_pretrained(self.path, **kwargs)
            except (ValueError, ImportError) as exc:
                processor = load_without_video(self.path, kwargs, exc)
            model = AutoModelForImageTextToText.from_pretrained(
                self.path, dtype=getattr(torch, dtype), **kwargs)
        except (OSError, ValueError, KeyError, ImportError) as exc:
            raise UserError(f"vlm-local: cannot load a VLM from {self.path}: "
                            f"{' '.join(str(exc).split())}") from None
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"  # generation continues from the right edge
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.processor, self.model = processor, model.to(device).eval()
        self.device = torch.device(device)

    def ping(self) -> list[str]:
        """``judges check``: loading the folder is this judge's reachability."""
        self.load()
        return [self.path.name]

    # --- judging ------------------------------------------------------------------------
    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        if not items:
            return []
        self.load()
        return judge_batched(self.protocol, items, self.generate)

    def generate(self, requests: Sequence[ChatRequest]) -> list[Reply]:
        """Greedy replies to chat requests, ``batch_size`` at a time."""
        replies: list[Reply] = []
        for start in range(0, len(requests), self.batch_size):
            replies += self._generate_batch(requests[start : start + self.batch_size])
        return replies

    def _generate_batch(self, requests: Sequence[ChatRequest]) -> list[Reply]:
        import torch
        from PIL import Image

        images, texts, slots = [], [], []
        out: list[Reply | None] = [None] * len(requests)
        for i, request in enumerate(requests):
            content: list[dict[str, str]] = [{"type": "text", "text": request.text}]
            if request.image is not None:
                try:
                    with Image.open(request.image) as image:
                        images.append(image.convert("RGB"))
                except (OSError, Image.DecompressionBombError) as exc:  # a huge image is unreadable too
                    out[i] = Reply(None, error=f"cannot read image {request.image.name}: {exc}")
                    continue
                content.insert(0, {"type": "image"})
            messages = [{"role": "user", "content": content}]
            texts.append(self.processor.apply_chat_template(messages, add_generation_prompt=True,
                                                            tokenize=False))
            slots.append(i)
        if slots:
            inputs = self.processor(text=texts, images=images or None, padding=True,
                                    return_tensors="pt").to(self.device)
            tokenizer = getattr(self.processor, "tokenizer", self.processor)
            with torch.inference_mode():
                generated = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                                do_sample=False, num_beams=1,
                                                pad_token_id=tokenizer.pad_token_id)
            new = generated[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(slots, tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
                out[i] = Reply(text)
        return [r if r is not None else Reply(None, error="no reply") for r in out]

    def close(self) -> None:
        self.model = self.processor = None
