"""The released checkpoint folder: which files, what their configs mean, and how to write them.

A BAGEL folder (as published as ``BAGEL-7B-MoT``) holds::

    llm_config.json     Qwen2 decoder config (the loader forces the MoT layer and qk-norm)
    vit_config.json     SigLIP config; by the release's convention the model uses
                        num_hidden_layers - 1 layers (the penultimate SigLIP layer)
    config.json         top-level settings (latent patch size, position grids, connector)
    ae.safetensors      FLUX autoencoder, original (non-diffusers) key names
    ema.safetensors     the model weights (fine-tuned folders: model.safetensors)
    tokenizer files     a Qwen2 tokenizer with <|im_start|> <|im_end|> <|vision_start|> <|vision_end|>

Nothing here imports torch: reading configs and safetensors headers is plain JSON, so the
checkpoint-completion command and error messages stay fast.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unisandbox.errors import UserError
from unisandbox.factories import is_finite
from unisandbox.run.store import atomic_path, atomic_write_json

#: Weight files in the order the loader prefers them: a fine-tuned folder's trained weights
#: (``model.safetensors``) win over the EMA copy the release ships.
WEIGHT_FILES = ("model.safetensors", "ema.safetensors")
AE_FILE = "ae.safetensors"
LLM_CONFIG = "llm_config.json"
VIT_CONFIG = "vit_config.json"
TOP_CONFIG = "config.json"

#: The FLUX autoencoder the release hard-codes (``ae.safetensors`` carries no config).
FLUX_AE: dict[str, Any] = {
    "resolution": 256, "in_channels": 3, "downsample": 8, "ch": 128, "out_ch": 3,
    "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "z_channels": 16,
    "scale_factor": 0.3611, "shift_factor": 0.1159,
}

SPECIAL_TOKENS = {"bos": "<|im_start|>", "eos": "<|im_end|>",
                  "start_of_image": "<|vision_start|>", "end_of_image": "<|vision_end|>"}


@dataclass
class Settings:
    """Everything the network needs to be built with the release's shapes and names."""

    llm: dict[str, Any]
    vit: dict[str, Any]  # as the model uses it: num_hidden_layers is the real layer count
    vae: dict[str, Any] = field(default_factory=lambda: dict(FLUX_AE))
    latent_patch_size: int = 2
    max_latent_size: int = 64
    vit_max_num_patch_per_side: int = 70
    connector_act: str = "gelu_pytorch_tanh"
    interpolate_pos: bool = False
    timestep_shift: float = 1.0

    @property
    def latent_downsample(self) -> int:
        return int(self.vae["downsample"]) * self.latent_patch_size

    @property
    def latent_channels(self) -> int:
        return int(self.vae["z_channels"])

    def top_config(self) -> dict[str, Any]:
        """config.json as written by ``save``: release field names plus the nested configs."""
        out = {k: v for k, v in asdict(self).items() if k not in ("llm", "vit", "vae")}
        out.update(visual_gen=True, visual_und=True, vae_config=dict(self.vae),
                   llm_config=llm_json(self.llm), vit_config=vit_json(self.vit))
        return out


def llm_json(llm: Mapping[str, Any]) -> dict[str, Any]:
    """llm_config.json: keep ``rope_theta`` at top level so the release's loader reads it too."""
    out = {k: v for k, v in llm.items() if k not in ("rope_parameters", "dtype", "torch_dtype")}
    rope = llm.get("rope_parameters") or {}
    if "rope_theta" not in out and "rope_theta" in rope:
        out["rope_theta"] = rope["rope_theta"]
    out.update(qk_norm=True, layer_module="Qwen2MoTDecoderLayer", tie_word_embeddings=False)
    return out


def vit_json(vit: Mapping[str, Any]) -> dict[str, Any]:
    """vit_config.json: one layer more than the model uses (the release's loader drops one)."""
    out = {k: v for k, v in vit.items() if k not in ("dtype", "torch_dtype", "rope")}
    out["num_hidden_layers"] = int(vit["num_hidden_layers"]) + 1
    return out


# --- safetensors headers (no torch) ------------------------------------------------------
def read_header(path: Path) -> dict[str, dict[str, Any]]:
    """Tensor name -> {"dtype", "shape", "data_offsets"} from a safetensors file's header."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(8)
            if len(raw) != 8:
                raise UserError(f"{path}: not a safetensors file (shorter than 8 bytes)")
            (size,) = struct.unpack("<Q", raw)
            if size > 100_000_000:
                raise UserError(f"{path}: not a safetensors file (header length {size})")
            header = json.loads(handle.read(size))
            length = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise UserError(f"{path}: not a safetensors file (header is not a JSON object)")
    header.pop("__metadata__", None)
    try:
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise UserError(f"{path}: not a safetensors file (a tensor entry lacks data_offsets)") from None
    if 8 + size + end > length:  # an interrupted download: the header promises more
        raise UserError(f"{path}: incomplete ({length:,} bytes where its header lists "
                        f"{8 + size + end:,}); download or copy it again")
    return header


def weights_file(folder: Path, name: str | None = None,
                 order: tuple[str, ...] = WEIGHT_FILES) -> Path:
    """The weights file to load: ``name`` if given, else the first of ``order`` present."""
    if name:
        if Path(name).name != name:
            raise UserError(f"weights {name!r}: give a file name inside {folder}, not a path")
        path = folder / name
        if not path.is_file():
            raise UserError(f"{path}: weights file not found")
        return path
    for candidate in order:
        if (folder / candidate).is_file():
            return folder / candidate
    others = sorted(p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")
                    or p.name.endswith(".safetensors.index.json"))
    if others:  # sharded or pickled weights: not read (one safetensors file, never a pickle)
        raise UserError(f"{folder}: no {' or '.join(WEIGHT_FILES)}; {others[0]} is not read (this "
                        "plugin loads one safetensors file, as the release ships it, and never "
                        "unpickles .bin/.pt files); give weights=NAME for another .safetensors file")
    raise UserError(f"{folder}: no {' or '.join(WEIGHT_FILES)} (is this a BAGEL checkpoint folder?)")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def _count_layers(names: Iterable[str], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for n in names if (m := pattern.match(n))}
    return max(found) + 1 if found else 0


def _grid_side(header: Mapping[str, Any], name: str, default: int, where: Path) -> int:
    if name not in header:
        return default
    rows = int(header[name]["shape"][0])
    side = math.isqrt(rows)
    if side * side != rows:
        raise UserError(f"{where}: {name} has {rows} rows, not a square grid")
    return side


_KIND_NAMES = {int: "a positive integer", float: "a number", str: "a string", bool: "true or false"}


def read_settings(folder: Path, weights: Path | None = None) -> Settings:
    """Read a checkpoint folder's configs, checked against its weights' header.

    Where the release's files disagree with its weights, the weights win, as in the
    reference loader: the position grids come from the ``pos_embed`` tensors (the published
    config.json says ``max_latent_size`` 32 while the weights and the inference code use 64),
    and the ViT depth is the number of layers the weights hold.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: checkpoint folder not found")
    top = _read_json(folder / TOP_CONFIG) if (folder / TOP_CONFIG).is_file() else {}
    for flag in ("visual_gen", "visual_und"):
        if top.get(flag, True) is not True:
            raise UserError(f"{folder / TOP_CONFIG}: field {flag!r}: this plugin needs the "
                            "full model (visual_gen and visual_und true)")
    if (folder / LLM_CONFIG).is_file():
        llm = _read_json(folder / LLM_CONFIG)
    elif isinstance(top.get("llm_config"), dict):
        llm = dict(top["llm_config"])
    else:
        raise UserError(f"{folder}: missing {LLM_CONFIG}")
    if (folder / VIT_CONFIG).is_file():
        vit = _read_json(folder / VIT_CONFIG)
    elif isinstance(top.get("vit_config"), dict):
        vit = dict(top["vit_config"])
    else:
        raise UserError(f"{folder}: missing {VIT_CONFIG}")
    for name, conf, keys in ((LLM_CONFIG, llm, ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                  "num_attention_heads", "vocab_size")),
                             (VIT_CONFIG, vit, ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                "num_attention_heads", "patch_size"))):
        for key in keys:
            if not isinstance(conf.get(key), int) or isinstance(conf.get(key), bool) or conf[key] < 1:
                raise UserError(f"{folder / name}: field {key!r}: expected a positive integer, "
                                f"got {conf.get(key)!r}")
    vit = dict(vit)
    vit["num_hidden_layers"] = int(vit["num_hidden_layers"]) - 1
    vae = dict(FLUX_AE)
    if isinstance(top.get("vae_config"), dict):
        for key, value in top["vae_config"].items():
            if key not in FLUX_AE:
                continue
            like = FLUX_AE[key]  # the release's value says the type

            def whole(v: Any) -> bool:
                return isinstance(v, int) and not isinstance(v, bool)

            if isinstance(like, list):
                ok = isinstance(value, list) and bool(value) and all(whole(v) and v > 0 for v in value)
            elif isinstance(like, float):
                ok = (whole(value) or isinstance(value, float)) and is_finite(value)
            else:
                ok = whole(value) and value > 0
            if not ok:
                raise UserError(f"{folder / TOP_CONFIG}: field 'vae_config.{key}': expected "
                                f"{type(like).__name__} like {like!r}, got {value!r}")
            vae[key] = value

    def field_of(key: str, default: Any, kind: type) -> Any:
        """A config.json field of the right type, or an error naming the file and field."""
        value = top.get(key, default)
        if kind is bool or kind is str:
            ok = isinstance(value, kind)
        elif isinstance(value, bool):  # true is no count
            ok = False
        else:
            ok = isinstance(value, int) if kind is int else (
                isinstance(value, (int, float)) and math.isfinite(value))
        if not ok:
            raise UserError(f"{folder / TOP_CONFIG}: field {key!r}: expected "
                            f"{_KIND_NAMES[kind]}, got {value!r}")
        if kind is int and value < 1:
            raise UserError(f"{folder / TOP_CONFIG}: field {key!r}: expected a positive integer, "
                            f"got {value!r}")
        return kind(value)

    settings = Settings(
        llm=llm, vit=vit, vae=vae,
        latent_patch_size=field_of("latent_patch_size", 2, int),
        max_latent_size=field_of("max_latent_size", 64, int),
        vit_max_num_patch_per_side=field_of("vit_max_num_patch_per_side", 70, int),
        connector_act=field_of("connector_act", "gelu_pytorch_tanh", str),
        interpolate_pos=field_of("interpolate_pos", False, bool),
        timestep_shift=field_of("timestep_shift", 1.0, float),
    )
    if weights is not None:
        header = read_header(weights)
        settings.max_latent_size = _grid_side(header, "latent_pos_embed.pos_embed",
                                              settings.max_latent_size, weights)
        settings.vit_max_num_patch_per_side = _grid_side(
            header, "vit_pos_embed.pos_embed", settings.vit_max_num_patch_per_side, weights)
        vit_layers = _count_layers(header, "vit_model.vision_model.encoder.layers.")
        if vit_layers:
            settings.vit["num_hidden_layers"] = vit_layers
        llm_layers = _count_layers(header, "language_model.model.layers.")
        if llm_layers and llm_layers != llm["num_hidden_layers"]:
            raise UserError(f"{folder / LLM_CONFIG}: field 'num_hidden_layers' is "
                            f"{llm['num_hidden_layers']} but {weights.name} holds {llm_layers} layers")
    return settings


# --- atomic writes (the engine's: tmp file beside the target, fsync, rename) ---------------
def atomic_save_safetensors(tensors: Mapping[str, Any], path: Path,
                            metadata: Mapping[str, str] | None = None) -> None:
    """safetensors' save_file into a temp file next to ``path``, then rename."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata or {"format": "pt"}))


def write_configs(folder: Path, settings: Settings) -> None:
    """llm_config.json, vit_config.json and config.json, in the release's conventions."""
    atomic_write_json(folder / LLM_CONFIG, llm_json(settings.llm))
    atomic_write_json(folder / VIT_CONFIG, vit_json(settings.vit))
    atomic_write_json(folder / TOP_CONFIG, settings.top_config())
