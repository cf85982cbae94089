"""The real models' side of the lens: at the last layer it must be the model's own output."""

from __future__ import annotations

import pytest
from unisandbox.records import GenerationRequest


def test_query_model_lens_at_the_last_layer_is_its_next_token_distribution():
    """The baseline position (the last text token) attends only to the text before it, so the
    lens at the last layer must reproduce the LM's own next-token distribution there exactly;
    an extra (or missing) final norm shows up as a mismatch."""
    pytest.importorskip("unisandbox_query")
    import torch
    from unisandbox_query.model import QueryModel
    from unisandbox_query.modeling_query_umm import QueryUMM, QueryUMMConfig
    from unisandbox_query.tokenization import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(["draw three red stars", "draw 3 blue hearts"])
    umm = QueryUMM(QueryUMMConfig(), tokenizer)
    with torch.no_grad():  # non-uniform norm weights, as after training
        umm.lm.model.norm.weight.uniform_(0.5, 2.0)
    model = QueryModel(umm)
    prompt = "draw 3 red stars"
    states = model.query_states([GenerationRequest(prompt, "normal")])[0]
    assert states.labels[0] == "baseline"
    lens = model.logit_lens(states.hidden[-1, 0])

    ids, mask = umm.tokenize([umm.generation_context(prompt)])
    with torch.no_grad():
        logits = umm.lm_forward(umm.embed(ids), mask).logits[0, -1]
    torch.testing.assert_close(lens, torch.softmax(logits.float(), -1), atol=1e-5, rtol=1e-4)
