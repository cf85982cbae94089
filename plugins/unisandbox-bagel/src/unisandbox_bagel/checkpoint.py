"""Load and save BAGEL checkpoint folders: strict key check, dtype, one device or a device map."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from unisandbox.errors import UserError

from . import layout
from .autoencoder import FluxAutoencoder
from .network import BagelNetwork, TokenIds

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32,
          "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16}

#: Layers accelerate must not cut across devices (a decoder layer's two experts and its
#: attention belong together; a SigLIP layer likewise).
NO_SPLIT = ["MoTDecoderLayer", "SiglipEncoderLayer"]
#: Modules the reference keeps on the first device: they mix their outputs in one tensor.
SAME_DEVICE = ["language_model.model.embed_tokens", "time_embedder", "latent_pos_embed", "vae2llm",
               "llm2vae", "connector", "vit_pos_embed"]


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    try:
        return DTYPES[str(name).lower()]
    except KeyError:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}") from None


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device {device!r}: {exc}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available here; use device=cpu")
    return chosen


@dataclass
class Loaded:
    settings: layout.Settings
    net: BagelNetwork
    vae: FluxAutoencoder
    tokenizer: Any
    tokens: TokenIds
    weights: Path


def load_tokenizer(folder: Path) -> tuple[Any, TokenIds]:
    """The folder's tokenizer (local files only, no remote code) and BAGEL's four special ids."""
    from transformers import AutoTokenizer

    slow = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    if not (folder / "tokenizer.json").is_file() and not slow:
        raise UserError(f"{folder}: missing tokenizer.json (or vocab.json and merges.txt): the "
                        "release ships the Qwen2 tokenizer files beside the weights")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}: cannot load the tokenizer ({exc})") from None
    vocab = tokenizer.get_vocab()
    missing = [tok for tok in layout.SPECIAL_TOKENS.values() if tok not in vocab]
    if missing:
        raise UserError(f"{folder}: the tokenizer lacks BAGEL's special tokens {missing}")
    ids = {role: int(vocab[tok]) for role, tok in layout.SPECIAL_TOKENS.items()}
    return tokenizer, TokenIds(**ids)


def check_activations(folder: Path, settings: layout.Settings) -> None:
    """Activation names the configs give, known to transformers (a typo was a KeyError)."""
    from transformers.activations import ACT2FN

    for name, key, value in ((layout.LLM_CONFIG, "hidden_act", settings.llm.get("hidden_act")),
                             (layout.VIT_CONFIG, "hidden_act", settings.vit.get("hidden_act")),
                             (layout.TOP_CONFIG, "connector_act", settings.connector_act)):
        if value is not None and value not in ACT2FN:
            raise UserError(f"{folder / name}: field {key!r}: unknown activation {value!r}; "
                            f"expected one of {', '.join(sorted(ACT2FN))}")


def check_names(expected: Mapping[str, torch.Size], header: Mapping[str, Any], where: Path) -> None:
    """Refuse a weights file whose names or shapes differ from the network's, listing them."""
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} ({', '.join(unexpected[:4])}"
                         f"{', ...' if len(unexpected) > 4 else ''})")
        hint = ""
        if missing and not unexpected:  # what a fine-tuning that saved only its trained part leaves
            hint = (f"; a partial fine-tuned checkpoint? fill it from its base with `unisandbox-bagel "
                    f"complete-checkpoint --base BASE --partial {where.parent}`")
        raise UserError(f"{where}: weights do not match the BAGEL network: {'; '.join(parts)}{hint}")
    wrong = [(n, tuple(header[n]["shape"]), tuple(s)) for n, s in expected.items()
             if tuple(header[n]["shape"]) != tuple(s)]
    if wrong:
        name, got, want = wrong[0]
        raise UserError(f"{where}: tensor {name} has shape {got}, the configs say {want} "
                        f"({len(wrong)} tensors differ)")


def _device_map(net: BagelNetwork, device_map: str | Mapping[str, Any], max_memory: Any,
                dtype: torch.dtype) -> dict[str, Any]:
    from accelerate import infer_auto_device_map

    if isinstance(device_map, Mapping):
        return dict(device_map)
    if device_map not in ("auto", "balanced", "sequential"):
        raise ValueError(f"device_map must be 'auto', 'balanced', 'sequential' or a mapping, got {device_map!r}")
    if isinstance(max_memory, str):
        max_memory = {i: max_memory for i in range(torch.cuda.device_count())} or {"cpu": max_memory}
    if device_map == "balanced":
        from accelerate.utils import get_balanced_memory

        max_memory = get_balanced_memory(net, max_memory=max_memory, no_split_module_classes=NO_SPLIT,
                                         dtype=dtype)
    dmap = infer_auto_device_map(net, max_memory=max_memory, no_split_module_classes=NO_SPLIT, dtype=dtype)
    first = dmap.get(SAME_DEVICE[0], next(iter(dmap.values())))
    for name in SAME_DEVICE:  # as the reference: only entries the map names on their own
        if name in dmap:
            dmap[name] = first
    return dmap


def load(folder: str | Path, *, dtype: str | torch.dtype = "bfloat16", device: str | None = None,
         device_map: str | Mapping[str, Any] | None = None, max_memory: Any = None,
         weights: str | None = None) -> Loaded:
    """Read a checkpoint folder into a ready network, autoencoder and tokenizer.

    With ``device`` everything sits on one device; with ``device_map`` ("auto", "balanced" or a
    module -> device mapping) accelerate spreads the decoder layers over the GPUs and moves
    activations between them.
    """
    from accelerate import init_empty_weights
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: checkpoint folder not found")
    torch_dtype = resolve_dtype(dtype)
    weights_path = layout.weights_file(folder, weights)
    settings = layout.read_settings(folder, weights_path)
    check_activations(folder, settings)
    ae_path = folder / layout.AE_FILE
    if not ae_path.is_file():
        raise UserError(f"{folder}: missing {layout.AE_FILE}")
    tokenizer, tokens = load_tokenizer(folder)
    if len(tokenizer) > settings.llm["vocab_size"]:  # an id past the embedding table: IndexError
        raise UserError(f"{folder}: the tokenizer has {len(tokenizer)} tokens but "
                        f"{layout.LLM_CONFIG} field 'vocab_size' is {settings.llm['vocab_size']}; "
                        "are they from the same model?")
    try:
        with init_empty_weights(include_buffers=False):
            net = BagelNetwork(settings)
            vae = FluxAutoencoder(settings.vae)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{folder}: the configs do not describe a valid BAGEL network ({exc})") from None
    expected = {k: v.shape for k, v in net.state_dict().items()}
    check_names(expected, layout.read_header(weights_path), weights_path)

    size = weights_path.stat().st_size
    if size > 1 << 30:  # a real checkpoint reads for minutes: say what is happening
        print(f"bagel: reading {weights_path} ({size / 1e9:.1f} GB; minutes from a network disk)",
              file=sys.stderr, flush=True)
    if device_map is None:
        target = resolve_device(device)
        state = load_file(str(weights_path), device=str(target) if target.type == "cuda" else "cpu")
        state = {k: v.to(torch_dtype) if v.is_floating_point() else v for k, v in state.items()}
        net.load_state_dict(state, strict=True, assign=True)
        del state
        net.to(target)
        vae_device = target
    else:
        from accelerate import load_checkpoint_and_dispatch

        dmap = _device_map(net, device_map, max_memory, torch_dtype)
        net = load_checkpoint_and_dispatch(net, checkpoint=str(weights_path), device_map=dmap,
                                           dtype=torch_dtype, no_split_module_classes=NO_SPLIT)
        vae_device = net.main_device
    layout.read_header(ae_path)  # complete, or one line saying it is not
    try:
        vae.load_release_state(load_file(str(ae_path)))
    except ValueError as exc:
        raise UserError(f"{ae_path}: {exc}") from None
    except RuntimeError as exc:  # tensors whose shapes do not fit the autoencoder config.json names
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc).splitlines()[0]
        raise UserError(f"{ae_path} does not fit the autoencoder of {folder / 'config.json'} "
                        f"({first.strip()})") from None
    vae.to(device=vae_device, dtype=torch_dtype)
    net.eval()
    vae.eval()
    return Loaded(settings, net, vae, tokenizer, tokens, weights_path)


def save(folder: str | Path, settings: layout.Settings, net: BagelNetwork, vae: FluxAutoencoder,
         tokenizer: Any) -> None:
    """Write the release layout: the three configs, ema.safetensors, ae.safetensors, tokenizer.

    Each file is written to a temporary name and renamed, so an interrupted save never leaves
    a half-written weights file under the real name.
    """
    folder = Path(folder)
    if (folder / "model.safetensors").exists():
        raise UserError(f"{folder}: holds a model.safetensors, which the loader would prefer over "
                        "the ema.safetensors being written; save into an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    layout.atomic_save_safetensors(state, folder / "ema.safetensors")
    ae = {k: v.detach().to("cpu").contiguous() for k, v in vae.release_state().items()}
    layout.atomic_save_safetensors(ae, folder / layout.AE_FILE)
    layout.write_configs(folder, settings)
    tokenizer.save_pretrained(str(folder))
