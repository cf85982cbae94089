"""Complete a partial fine-tuned checkpoint from its base, as UniSandBox's CKPT_Transfer did.

Fine-tuning that trains only part of BAGEL (the understanding expert for knowledge injection,
the generation expert for STARS) may save only some tensors. Completion copies every tensor
the partial weights lack from the base checkpoint, casts float32/float16 tensors to bfloat16,
writes the weights atomically, copies the base's configs, tokenizer and autoencoder where the
output lacks them, and reports exactly what it filled. Unlike the original it refuses tensors
whose shapes disagree with the base (a different architecture), and never overwrites files.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unisandbox.errors import UserError

from . import layout

REPORT = "completion_report.json"
CAST_FROM = ("F32", "F16")


@dataclass
class CompletionReport:
    base_weights: str
    partial_weights: str
    output: str
    filled: list[dict[str, Any]] = field(default_factory=list)
    kept: int = 0
    cast_to_bf16: int = 0
    extra: list[str] = field(default_factory=list)
    copied_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"completed {self.partial_weights} from {self.base_weights} -> {self.output}",
                 f"  kept {self.kept} trained tensors, filled {len(self.filled)} from the base, "
                 f"cast {self.cast_to_bf16} to bfloat16"]
        if self.extra:
            lines.append(f"  {len(self.extra)} tensors are not in the base (kept): {', '.join(self.extra[:5])}")
        if self.copied_files:
            lines.append(f"  copied from the base: {', '.join(self.copied_files)}")
        for item in self.filled[:20]:
            lines.append(f"  + {item['name']} {item['shape']} {item['dtype']}")
        if len(self.filled) > 20:
            lines.append(f"  ... and {len(self.filled) - 20} more (see {REPORT})")
        return "\n".join(lines)


def complete_checkpoint(base: str | Path, partial: str | Path, out: str | Path | None = None, *,
                        weights: str | None = None,
                        log: Callable[[str], None] | None = None) -> CompletionReport:
    """Fill ``partial``'s weights from ``base`` into ``out`` (default: ``partial`` itself)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    base, partial = Path(base), Path(partial)
    out = Path(out) if out is not None else partial
    base_file = layout.weights_file(base, order=("ema.safetensors", "model.safetensors"))
    partial_file = layout.weights_file(partial, weights)
    base_header = layout.read_header(base_file)
    partial_header = layout.read_header(partial_file)
    wrong = [n for n in set(base_header) & set(partial_header)
             if base_header[n]["shape"] != partial_header[n]["shape"]]
    if wrong:
        name = sorted(wrong)[0]
        raise UserError(f"{partial_file}: tensor {name} has shape {partial_header[name]['shape']}, "
                        f"the base has {base_header[name]['shape']} ({len(wrong)} differ); "
                        "is this the right base checkpoint?")
    extra = sorted(set(partial_header) - set(base_header))
    if not partial_header:
        raise UserError(f"{partial_file} holds no tensors")
    if len(extra) == len(partial_header):  # an autoencoder, another model: nothing in common
        raise UserError(f"{partial_file} shares no tensor with {base_file} (its first: {extra[0]}); "
                        "is it a partial BAGEL checkpoint of this base?")
    if extra:  # the result would not load: BAGEL refuses tensors it does not have
        raise UserError(f"{partial_file}: {len(extra)} tensor(s) are not in the base, e.g. "
                        f"{', '.join(extra[:3])}; is this the right base checkpoint?")
    if out.resolve() == base.resolve():
        raise UserError(f"--out {out} is the base checkpoint: its weights would change under every "
                        "later run on it; give a new --out")
    held = [name for name in (REPORT, partial_file.name, *layout.WEIGHT_FILES) if (out / name).is_file()]
    if out.resolve() != partial.resolve() and held:  # another completion, or someone's weights
        raise UserError(f"{out} holds {held[0]} already; give a new --out (files there are never "
                        "overwritten, and a folder mixing two bases' configs would not load right)")
    missing = sorted(set(base_header) - set(partial_header))
    report = CompletionReport(base_weights=str(base_file), partial_weights=str(partial_file),
                              output=str(out / partial_file.name), kept=len(partial_header),
                              extra=extra)
    tensors = load_file(str(partial_file))
    with safe_open(str(base_file), framework="pt") as handle:
        for name in missing:
            tensors[name] = handle.get_tensor(name)
            report.filled.append({"name": name, "shape": list(base_header[name]["shape"]),
                                  "dtype": base_header[name]["dtype"]})
    for name, tensor in tensors.items():
        if tensor.dtype in (torch.float32, torch.float16):
            tensors[name] = tensor.to(torch.bfloat16)
            report.cast_to_bf16 += 1

    out.mkdir(parents=True, exist_ok=True)
    layout.atomic_save_safetensors(tensors, out / partial_file.name)
    del tensors
    weight_names = set(layout.WEIGHT_FILES) | {partial_file.name}
    for source in sorted(base.iterdir()):
        if source.is_file() and source.name not in weight_names and not (out / source.name).exists():
            shutil.copy2(source, out / source.name)
            report.copied_files.append(source.name)
    layout.atomic_write_json(out / REPORT, asdict(report))
    if log:
        log(report.summary())
    return report
