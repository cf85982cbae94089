"""The capability vocabulary models declare and tasks, judges and trainers require."""

from __future__ import annotations

from typing import Any

GENERATE = "generate"  # prompts -> images, modes normal/think
UNDERSTAND = "understand"  # image + question -> text
CHAT = "chat"  # text -> text
QUERY_STATES = "query_states"  # hidden states of query tokens / last context position (probes)
TRAIN_UNDERSTANDING = "train:understanding"  # text loss over the understanding parameters
TRAIN_GENERATION = "train:generation"  # image loss over the generation parameters
CONDITION = "condition"  # the generator's condition for a context (STARS's think distillation)
THINK_SAMPLING = "think_sampling"  # GenerationRequest.temperature > 0: sampled, seeded reasoning

KNOWN: frozenset[str] = frozenset(
    {GENERATE, UNDERSTAND, CHAT, QUERY_STATES, TRAIN_UNDERSTANDING, TRAIN_GENERATION, CONDITION,
     THINK_SAMPLING}
)


def check_capabilities(_instance: Any, attribute: Any, value: frozenset[str]) -> None:
    """attrs validator: refuse unknown capability names (typos would silently disable checks)."""
    unknown = sorted(value - KNOWN)
    if unknown:
        raise ValueError(
            f"{attribute.name}: unknown capabilities {unknown}; known: {sorted(KNOWN)}"
        )
