"""Building query models from user arguments: a folder, from scratch, or the default checkpoint.

Import-light (torch, transformers and diffusers load inside the functions): plugin.py registers
these functions themselves, so the engine reads their signatures for argument errors.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unisandbox.errors import UserError
from unisandbox.factories import check_device, check_number
from unisandbox.run.store import exclusive

if TYPE_CHECKING:
    from .model import QueryModel


def cache_root() -> Path:
    """``$UNISANDBOX_CACHE``, else ``$XDG_CACHE_HOME/unisandbox``, else ``~/.cache/unisandbox``."""
    if os.environ.get("UNISANDBOX_CACHE"):
        return Path(os.environ["UNISANDBOX_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "unisandbox"


def _options(device: str, batch_size: int, steps: int | None, cfg_scale: float | None,
             threads: int | None, precision: str = "float32") -> dict[str, Any]:
    import torch

    check_number("threads", threads, whole=True, low=1)
    if threads is not None:
        torch.set_num_threads(threads)
    check_device(device)
    return {"device": device, "batch_size": batch_size, "steps": steps, "cfg_scale": cfg_scale,
            "precision": precision}


def query_from_path(path: str, device: str = "cpu", batch_size: int = 64, steps: int | None = None,
                    cfg_scale: float | None = None, threads: int | None = None,
                    query_expert_rank: int | None = None, precision: str = "float32",
                    query_layers: int | None = None,
                    query_expert_scope: str | None = None) -> QueryModel:
    """Load a query-UMM checkpoint folder (config.json, model.safetensors, tokenizer);
    ``query_expert_rank`` adds an inert query expert (acting at the queries, or with
    ``query_expert_scope=all`` at every position of the generation pass) and ``query_layers``
    an inert query decoder for the generation path to train; ``precision=bfloat16`` samples with a bf16
    denoiser (faster in batches on CPUs with bf16 units, several times slower on those
    without; not bit-equal)."""
    from .model import QueryModel
    from .modeling_query_umm import EXPERT_SCOPES

    if not isinstance(path, str) or not path.strip():  # path=5 arrives as a number, path= as ""
        raise UserError(f"path must name a checkpoint folder, got {path!r}")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"model path {folder} is not a folder")
    check_number("query_expert_rank", query_expert_rank, whole=True, low=0)
    check_number("query_layers", query_layers, whole=True, low=0)
    if query_expert_scope is not None and query_expert_scope not in EXPERT_SCOPES:
        raise UserError(f"query_expert_scope must be one of {', '.join(EXPERT_SCOPES)}, "
                        f"got {query_expert_scope!r}")
    try:
        return QueryModel.from_pretrained(folder, query_expert_rank=query_expert_rank,
                                          query_layers=query_layers,
                                          query_expert_scope=query_expert_scope,
                                          **_options(device, batch_size, steps, cfg_scale, threads,
                                                     precision))
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None


SHIPPED = Path(__file__).parent / "pretrained" / "query-tiny"


def shipped_checkpoint(digest: str) -> Path | None:
    """The checkpoint shipped with the plugin, when it was trained with recipe ``digest``."""
    meta = SHIPPED / "recipe.json"
    if not (meta.is_file() and (SHIPPED / "model.safetensors").is_file()):
        return None
    return SHIPPED if json.loads(meta.read_text()).get("recipe_digest") == digest else None


def default_checkpoint(progress: bool = True) -> Path:
    """The pretrained sandbox checkpoint for the default recipe: the one shipped with the
    plugin, else one in the user cache, else trained once into the cache."""
    from .sandbox.pretrain import Recipe, SandboxPretrain, scratch_model

    recipe = Recipe()
    shipped = shipped_checkpoint(recipe.digest())
    if shipped is not None:
        return shipped
    folder = cache_root() / f"query-tiny-{recipe.digest()}"
    model_dir = folder / "model"

    def finished() -> bool:  # the log and config.json are the last files a run writes
        return (folder / "pretrain_log.json").is_file() and (model_dir / "config.json").is_file()

    if finished():
        return model_dir
    folder.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(folder.parent / f"{folder.name}.lock", f"query-tiny: another process is training "
                                                           f"the checkpoint into {folder}; waiting for it"):
        if finished():  # the other process has just trained it
            return model_dir
        print(f"query-tiny: no pretrained sandbox checkpoint for recipe {recipe.digest()} yet; "
              f"training one now (about 45 minutes on 2 CPU cores, once) into {folder}", file=sys.stderr)
        SandboxPretrain(progress=progress).train(scratch_model(recipe), folder)  # resumes a killed one
    return model_dir


def query_tiny(path: str | None = None, init: str | None = None, device: str = "cpu",
               batch_size: int = 64, steps: int | None = None, cfg_scale: float | None = None,
               threads: int | None = None, progress: bool = True,
               query_expert_rank: int | None = None, precision: str = "float32",
               key_tokens: bool = False, query_layers: int | None = None,
               query_expert_scope: str | None = None) -> QueryModel:
    """The sandbox model: ``path=DIR`` loads a folder, ``init=scratch`` an untrained model
    (``key_tokens``: its tokenizer makes each quoted rule key one token, for a recipe with
    ``key_tokens``), nothing the default pretrained checkpoint (trained into the user cache on
    first use, with a progress bar unless ``progress`` is false)."""
    if not isinstance(key_tokens, bool):
        raise UserError(f"key_tokens must be true or false, got {key_tokens!r}")
    if key_tokens and init != "scratch":
        raise UserError("key_tokens is for an untrained model (init=scratch): a checkpoint keeps its tokenizer")
    if path is not None:
        return query_from_path(path, device, batch_size, steps, cfg_scale, threads, query_expert_rank,
                               precision, query_layers, query_expert_scope)
    if init not in (None, "scratch"):
        raise UserError(f"init must be 'scratch' (an untrained model), got {init!r}")
    if init == "scratch":
        from .sandbox.pretrain import Recipe, scratch_model

        if query_expert_rank or query_layers or query_expert_scope:
            raise UserError("query_expert_rank, query_expert_scope and query_layers are for a "
                            "pretrained model (the sandbox recipe has none of them)")
        from .model import QueryModel

        opts = _options(device, batch_size, steps, cfg_scale, threads, precision)
        umm = scratch_model(Recipe(key_tokens=key_tokens)).umm.to(opts.pop("device"))
        try:
            return QueryModel(umm, source="scratch", **opts)
        except ValueError as exc:  # a bad option value
            raise UserError(str(exc)) from None
    if not isinstance(progress, bool):  # the CLI's parse_value already turns "false" into False
        raise UserError(f"progress must be true or false, got {progress!r}")
    return query_from_path(str(default_checkpoint(progress=progress)), device, batch_size, steps,
                           cfg_scale, threads, query_expert_rank, precision, query_layers,
                           query_expert_scope)


#: what ``unisandbox models show`` says beside an argument whose default does not say it all
_NOTES = {"steps": "the checkpoint's sampling steps (10)", "cfg_scale": "the checkpoint's (2.0)",
          "threads": "torch's own choice", "batch_size": "prompts a forward pass",
          "precision": "float32 or bfloat16 (faster only on CPUs with bf16 units)",
          "query_expert_rank": "a rank adds an inert LoRA-style expert for STARS to train",
          "query_layers": "a depth adds an inert query decoder for STARS to train",
          "query_expert_scope": "queries, or all positions of the generation pass"}
query_from_path.argument_notes = _NOTES  # type: ignore[attr-defined]
query_tiny.argument_notes = {  # type: ignore[attr-defined]
    **_NOTES, "path": "the shipped pretrained checkpoint", "init": "scratch: an untrained model",
    "key_tokens": "with init=scratch: one token a quoted rule key",
    "progress": "a bar if the default checkpoint must be trained first"}
