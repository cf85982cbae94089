"""Fixtures of the stars plugin's tests: a tiny query-UMM checkpoint and a small corpus.

The model is the sandbox architecture at toy widths (about 0.2 M parameters), random, saved
and loaded through the real ``save_pretrained`` / ``from_pretrained``. Its vocabulary is built
from train-split texts, so the injected (test-split) names are letter pieces, as in the
sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from unisandbox.testing import one_thread  # noqa: F401  (autouse)


def tiny_config() -> object:
    from unisandbox_query.modeling_query_umm import QueryUMMConfig

    return QueryUMMConfig(
        lm={"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
            "max_position_embeddings": 256, "tie_word_embeddings": True},
        vision={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
                "vision_use_head": False},
        denoiser={"num_attention_heads": 2, "attention_head_dim": 16, "in_channels": 3,
                  "out_channels": 3, "num_layers": 2, "sample_size": 32, "patch_size": 8,
                  "norm_type": "ada_norm_single", "cross_attention_dim": 32,
                  "use_additional_conditions": False},
        num_queries=4, connector_hidden=64, sample_steps=3, cfg_scale=1.0,
        max_think_tokens=12, max_answer_tokens=20)


def vocabulary_texts() -> list[str]:
    """Train-split words: task prompts and their steps, and the train characters' corpus."""
    from unisandbox.factories import build
    from unisandbox.registry import get_registry
    from unisandbox.tasks import knowledge as K
    from unisandbox.world import get_world

    reg = get_registry()
    texts: list[str] = []
    for name in ("math-1", "math-2", "math-3"):
        for s in build(reg.task(name), {"world": "glyph", "split": "train", "n": 60}).samples():
            texts += [s.prompt, s.question, *s.meta["steps"]]
    world = get_world("glyph")
    for conv in K.corpus(K.make_characters(4, 0, "train", world), world):
        texts += [t.text for t in conv.turns]
    return texts


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("unisandbox_query")
    import torch
    from unisandbox_query.modeling_query_umm import QueryUMM
    from unisandbox_query.tokenization import build_tokenizer

    torch.manual_seed(0)
    umm = QueryUMM(tiny_config(), build_tokenizer(vocabulary_texts()))
    folder = tmp_path_factory.mktemp("tiny-query") / "model"
    umm.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_model(tiny_checkpoint: Path) -> object:
    """A fresh copy of the tiny model for each test."""
    from unisandbox_query.model import QueryModel

    return QueryModel.from_pretrained(tiny_checkpoint, batch_size=64)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The injection corpus of two test-split characters (80 conversations)."""
    from unisandbox.tasks import knowledge as K
    from unisandbox.tasks.published import write_conversations
    from unisandbox.world import get_world

    world = get_world("glyph")
    characters = K.make_characters(2, 0, "test", world)
    path = tmp_path_factory.mktemp("corpus") / "knowledge.jsonl"
    return write_conversations(K.corpus(characters, world), path)

