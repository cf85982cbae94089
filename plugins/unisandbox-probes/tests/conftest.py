"""Fixtures of the probes' tests: a model whose internals are known exactly.

``PlantedModel`` answers ``query_states`` with hidden states that are chosen word embeddings:
at the (position, layer) cells a test plants, the embedding of a chosen word; everywhere else
the embedding of a filler word. Its ``logit_lens`` is a fixed linear head (the transposed
embedding matrix) plus softmax, so the probe's answer is known in advance: near 1 for the
planted word where it was planted, near 0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from unisandbox.protocols import Model, QueryStates
from unisandbox.records import GenerationRequest
from unisandbox.testing import one_thread  # noqa: F401  (autouse)

#: The test vocabulary: digits and number words, glyph colours and shapes (both numbers),
#: fruit, portrait words, a few first pieces, fillers.
WORDS = [
    "[UNK]", "the", "draw", "<assistant>",
    *[str(d) for d in range(20)], "one", "two", "three", "four", "five",
    "red", "green", "blue", "yellow", "orange", "purple", "oranges",
    "star", "stars", "heart", "hearts", "square", "squares", "triangle", "triangles",
    "diamond", "diamonds", "cross", "crosses", "circle", "circles",
    "apples", "straw", "##b", "woman", "man", "boy", "girl", "elderly", "south", "asian",
    "e", "##l",
]
SCALE = 12.0


class PlantedModel(Model):
    """``plant(prompt, mode)`` -> {(label, layer): word}; other cells hold ``filler``."""

    capabilities = frozenset({"query_states"})

    def __init__(self, plant: Callable[[str, str], Mapping[tuple[str, int], str]],
                 labels: Sequence[str] = ("baseline", "q0", "q1", "q2"), layers: int = 4,
                 filler: str = "the", seed: int = 0) -> None:
        import torch

        self.vocab = {w: i for i, w in enumerate(WORDS)}
        width = len(WORDS)
        gen = torch.Generator().manual_seed(seed)
        # orthonormal rows: the head maps embedding(w) exactly onto w's logit
        self.embedding, _ = torch.linalg.qr(torch.randn(width, width, generator=gen))
        self.plant, self.labels, self.layers, self.filler = plant, tuple(labels), layers, filler
        self.calls: list[GenerationRequest] = []

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "checkpoint": "planted"}

    def query_states(self, requests: Sequence[GenerationRequest]) -> list[QueryStates]:
        import torch

        out = []
        for r in requests:
            self.calls.append(r)
            planted = self.plant(r.prompt, r.mode)
            hidden = torch.empty(self.layers + 1, len(self.labels), self.embedding.shape[1])
            for layer in range(self.layers + 1):
                for pos, label in enumerate(self.labels):
                    word = planted.get((label, layer), self.filler)
                    hidden[layer, pos] = SCALE * self.embedding[self.vocab[word]]
            out.append(QueryStates(hidden=hidden, labels=self.labels,
                                   think="planted reasoning" if r.mode == "think" else None))
        return out

    def logit_lens(self, hidden: Any) -> Any:
        import torch

        return torch.softmax(hidden @ self.embedding.T, dim=-1)

    def vocabulary(self) -> dict[str, int]:
        return dict(self.vocab)


@pytest.fixture(scope="session")
def planted_model() -> type[PlantedModel]:
    return PlantedModel
