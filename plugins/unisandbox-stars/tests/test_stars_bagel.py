"""Both trainers on the BAGEL plugin's tiny random checkpoint (another model family).

Random weights draw nothing meaningful, so STARS runs with no_filter; what is checked is
that each trainer moves its own part only (the autoencoder, in neither part, never moves).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("unisandbox_bagel")

FAST = {"dtype": "float32", "device": "cpu", "image_size": 64, "steps": 4, "think_tokens": 6,
        "answer_tokens": 6}


def snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def identical(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def bagel_model(tmp_path_factory: pytest.TempPathFactory):
    from unisandbox_bagel.plugin import bagel
    from unisandbox_bagel.tiny import write_tiny_checkpoint

    folder = write_tiny_checkpoint(tmp_path_factory.mktemp("bagel") / "tiny", seed=0)
    return bagel(str(folder), **FAST)


def test_inject_then_stars_on_tiny_bagel(bagel_model, corpus_file: Path, tmp_path: Path) -> None:
    from unisandbox_stars.inject import InjectTrainer
    from unisandbox_stars.stars import StarsTrainer

    model = bagel_model
    understanding = snapshot(model.trainable_parameters("understanding"))
    generation = snapshot(model.trainable_parameters("generation"))
    vae = snapshot(model.vae.parameters())

    InjectTrainer(data=str(corpus_file), steps=3, batch_size=4, lr=1e-3,
                  progress=False).train(model, tmp_path / "inject")
    assert identical(snapshot(model.trainable_parameters("generation")), generation)
    injected = snapshot(model.trainable_parameters("understanding"))
    assert not identical(injected, understanding)

    result = StarsTrainer(tasks="math-1", n=2, k=1, no_filter=True, steps=2, batch_size=2,
                          progress=False).train(model, tmp_path / "stars")
    assert result.metrics["train_steps"] == 2 and result.metrics["accepted"] == 2
    assert identical(snapshot(model.trainable_parameters("understanding")), injected)
    assert not identical(snapshot(model.trainable_parameters("generation")), generation)
    assert identical(snapshot(model.vae.parameters()), vae)
    assert (tmp_path / "stars" / "model").is_dir()
