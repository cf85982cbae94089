"""Entry point of the unisandbox-query plugin: the query-based models and the sandbox trainer.

Import-light on purpose (the CLI imports every plugin module at start-up): torch, transformers
and diffusers load inside the factories (factories.py imports none of them at the top).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from unisandbox import capabilities as caps
from unisandbox.hookspecs import hookimpl
from unisandbox.specs import ModelSpec, TrainerSpec

from .factories import query_from_path, query_tiny

PLUGIN_API_VERSION = 1

CAPABILITIES = frozenset({caps.GENERATE, caps.UNDERSTAND, caps.CHAT, caps.QUERY_STATES,
                          caps.TRAIN_UNDERSTANDING, caps.TRAIN_GENERATION, caps.CONDITION,
                          caps.THINK_SAMPLING})


class _SandboxPretrainFactory:
    """Builds the ``sandbox-pretrain`` trainer; its signature is the recipe's fields, read when
    asked (``unisandbox train sandbox-pretrain --help`` lists them, an unknown ``--train-arg`` is
    refused naming them) so that importing the plugin does not import torch."""

    def __call__(self, **kwargs: Any) -> Any:
        from .sandbox.pretrain import SandboxPretrain

        return SandboxPretrain(**kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        from .sandbox.pretrain import SandboxPretrain

        return SandboxPretrain.signature()


sandbox_pretrain = _SandboxPretrainFactory()


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(ModelSpec(
        name="query-tiny", factory=query_tiny, capabilities=CAPABILITIES,
        description="the sandbox's tiny query-based UMM (CPU; the shipped pretrained checkpoint, or path=DIR)",
    ))
    register(ModelSpec(
        name="query", factory=query_from_path, capabilities=CAPABILITIES,
        description="a query-based UMM checkpoint folder (path=DIR): LM + queries + connector + denoiser",
    ))


@hookimpl
def register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    register(TrainerSpec(
        name="sandbox-pretrain", factory=sandbox_pretrain,
        requires={caps.TRAIN_UNDERSTANDING, caps.TRAIN_GENERATION},
        description="pretrain the sandbox model from scratch (use --model query-tiny --model-arg init=scratch)",
    ))
