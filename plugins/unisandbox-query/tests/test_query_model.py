"""The query-based UMM: tokenizer, save/load, every capability through the engine, learning."""

from __future__ import annotations

import json
import random

import attrs
import pytest
import torch
from unisandbox.errors import UserError
from unisandbox.records import Conversation, GenerationRequest, Turn
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner
from unisandbox.world.glyph_draw import render
from unisandbox_query.model import QueryModel
from unisandbox_query.modeling_query_umm import QueryUMM, QueryUMMConfig
from unisandbox_query.tokenization import build_tokenizer, load_tokenizer

SMALL = QueryUMMConfig(
    lm={"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 512,
        "tie_word_embeddings": True},
    vision={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "image_size": 32, "patch_size": 8, "vision_use_head": False},
    denoiser={"num_attention_heads": 2, "attention_head_dim": 16, "in_channels": 3,
              "out_channels": 3, "num_layers": 2, "sample_size": 32, "patch_size": 8,
              "norm_type": "ada_norm_single", "cross_attention_dim": 32,
              "use_additional_conditions": False},
    num_queries=4, connector_hidden=32, sample_steps=3, max_think_tokens=8, max_answer_tokens=8,
)
TEXTS = ["Draw 3 red stars.", "What is 7 - 4?", "7 - 4 = 3. The answer is 3.",
         "The image shows 2 blue circles.", "So draw 3 red stars."]


@pytest.fixture(scope="module")
def small() -> QueryModel:
    torch.manual_seed(0)
    return QueryModel(QueryUMM(SMALL, build_tokenizer(TEXTS)), source="test")


def test_tokenizer_spells_unknown_words_and_round_trips(tmp_path):
    tok = build_tokenizer(TEXTS)
    assert "[UNK]" not in tok.tokenize("Zorblax draws 12 stars")
    assert tok.tokenize("Zorblax")[:2] == ["z", "##o"]
    assert tok.decode(tok("red stars")["input_ids"]) == "red stars"
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again("7 - 4 = 3")["input_ids"] == tok("7 - 4 = 3")["input_ids"]
    assert again.padding_side == "left"


def test_key_tokens_make_each_quoted_rule_key_one_token(tmp_path):
    text = "Rule 1: The letter 'K' means red stars. Rule 2: '3' refers to '%'. Utassa's hair"
    plain, keyed = build_tokenizer([text]), build_tokenizer([text], key_tokens=True)
    assert plain.tokenize("'K' means")[:3] == ["'", "k", "'"]
    assert keyed.tokenize(text)[4:9] == ["letter", "'k'", "means", "red", "stars"]
    assert "'" in keyed.tokenize("Utassa's") and "'%'" in keyed.tokenize(text)
    keyed.save_pretrained(tmp_path)  # the split travels with the checkpoint
    assert load_tokenizer(tmp_path).tokenize(text) == keyed.tokenize(text)


def test_save_load_round_trip_is_exact(small, tmp_path):
    small.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    loaded = QueryModel.from_pretrained(tmp_path / "ckpt")
    for (name, a), (_, b) in zip(small.umm.state_dict().items(), loaded.umm.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    req = [GenerationRequest("Draw 3 red stars.", "normal", 5), GenerationRequest("What?", "think", 6)]
    first, second = small.generate(req), loaded.generate(req)
    assert [g.image.tobytes() for g in first] == [g.image.tobytes() for g in second]
    assert first[1].think == second[1].think and first[0].think is None


def test_sampled_reasoning_is_seeded_per_request_and_greedy_at_zero(small):
    """``temperature`` > 0 samples the think-mode reasoning from the request's seed: k seeds
    give k reasonings (what STARS's filter chooses among), one seed one reasoning whatever the
    batch; at 0 (the default) it is the greedy text whatever the seed."""
    prompt = "Draw 3 red stars."
    greedy = [g.think for g in small.generate([GenerationRequest(prompt, "think", s) for s in range(4)])]
    assert len(set(greedy)) == 1
    hot = [GenerationRequest(prompt, "think", s, temperature=2.0) for s in range(4)]
    sampled = [g.think for g in small.generate(hot)]
    assert len(set(sampled)) > 1
    beside = small.generate([GenerationRequest("What is 7 - 4?", "think", 9), hot[2]])
    assert small.generate([hot[2]])[0].think == beside[1].think == sampled[2]
    cold = small.generate([GenerationRequest(prompt, "think", 5, temperature=1e-4)])
    assert cold[0].think == greedy[0]  # sampling reads the same logits greedy decoding does
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        GenerationRequest(prompt, "think", 0, temperature=-1)


@pytest.mark.parametrize(("arg", "value", "part"), [("query_expert_rank", 4, "query_expert"),
                                                    ("query_layers", 2, "query_decoder")])
def test_generation_parts_added_to_a_checkpoint_are_inert_until_trained(small, tmp_path, arg, value, part):
    """A query expert (zero up-projection) or query decoder (zero output projections) added to
    a saved model changes nothing; training it moves the conditioning, while text decoding and
    the LM's weights stay put, and the saved folder records it."""
    small.save_pretrained(tmp_path / "plain")
    model = QueryModel.from_pretrained(tmp_path / "plain", **{arg: value})
    umm = model.umm
    prompts = ["Draw 3 red stars.", "Draw 2 blue circles now please."]  # unequal: padding
    assert torch.equal(umm.condition(prompts), small.umm.condition(prompts))
    added = {id(p) for p in getattr(umm, part).parameters()}
    assert added <= {id(p) for p in model.trainable_parameters("generation")}
    assert added.isdisjoint(id(p) for p in model.trainable_parameters("understanding"))
    lm_before = {k: v.clone() for k, v in umm.lm.state_dict().items()}
    chat_before = model.chat(["What is 7 - 4?"])
    opt = torch.optim.SGD(getattr(umm, part).parameters(), lr=1.0)
    images = umm.pixels([render({"kind": "star", "colour": "red", "count": 3})] * 2)
    for _ in range(3):
        opt.zero_grad()
        umm.flow_loss([umm.generation_context(p) for p in prompts], images).backward()
        opt.step()
    assert not torch.equal(umm.condition(prompts), small.umm.condition(prompts))
    assert model.chat(["What is 7 - 4?"]) == chat_before
    assert all(torch.equal(v, umm.lm.state_dict()[k]) for k, v in lm_before.items())
    # a left-padded context gives the condition it gives alone
    assert torch.allclose(umm.condition(prompts[:1]), umm.condition(prompts)[:1], atol=1e-5)
    model.save_pretrained(tmp_path / "trained")
    assert json.loads((tmp_path / "trained" / "config.json").read_text())[arg] == value
    assert arg not in json.loads((tmp_path / "plain" / "config.json").read_text())
    again = QueryModel.from_pretrained(tmp_path / "trained")
    assert torch.equal(again.umm.condition(prompts), umm.condition(prompts))
    with pytest.raises(ValueError, match=f"{arg}={value}"):
        QueryModel.from_pretrained(tmp_path / "trained", **{arg: value + 1})


@pytest.mark.parametrize("scope", ["queries", "all"])
def test_the_expert_scope_says_whose_states_the_generation_pass_changes(small, tmp_path, scope):
    """``query_expert_scope=all`` lets the trained expert re-read the context with weights of
    its own (the context's states in the generation pass move); ``queries`` leaves them the
    LM's. Either way text decoding and the LM stay put, and the folder records the scope."""
    small.save_pretrained(tmp_path / "plain")
    model = QueryModel.from_pretrained(tmp_path / "plain", query_expert_rank=4, query_expert_scope=scope)
    umm, q = model.umm, SMALL.num_queries
    prompts = ["Draw 3 red stars.", "Draw 2 blue circles now please."]
    assert torch.equal(umm.condition(prompts), small.umm.condition(prompts))  # inert until trained
    chat_before = model.chat(["What is 7 - 4?"])
    opt = torch.optim.SGD(umm.query_expert.parameters(), lr=1.0)
    images = umm.pixels([render({"kind": "star", "colour": "red", "count": 3})] * 2)
    for _ in range(3):
        opt.zero_grad()
        umm.flow_loss([umm.generation_context(p) for p in prompts], images).backward()
        opt.step()
    with torch.no_grad():
        context = umm.query_hidden(prompts)[-1][:, :-q]
        lm_own = small.umm.query_hidden(prompts)[-1][:, :-q]
    assert torch.equal(context, lm_own) == (scope == "queries")
    assert model.chat(["What is 7 - 4?"]) == chat_before
    assert torch.allclose(umm.condition(prompts[:1]), umm.condition(prompts)[:1], atol=1e-5)
    model.save_pretrained(tmp_path / "trained")
    saved = json.loads((tmp_path / "trained" / "config.json").read_text())
    assert saved.get("query_expert_scope", "queries") == scope
    assert torch.equal(QueryModel.from_pretrained(tmp_path / "trained").umm.condition(prompts),
                       umm.condition(prompts))
    other = "queries" if scope == "all" else "all"
    with pytest.raises(ValueError, match=f"query_expert_scope={scope}"):
        QueryModel.from_pretrained(tmp_path / "trained", query_expert_scope=other)


def test_the_query_decoder_reads_the_context(small):
    """Its cross-attention's keys and values come from the context's states: they learn."""
    umm = QueryUMM(QueryUMMConfig(**{**small.umm.config.__dict__, "query_layers": 1}), small.umm.tokenizer)
    umm.load_state_dict(small.umm.state_dict(), strict=False)
    cross = umm.query_decoder.layers[0].multihead_attn
    torch.nn.init.normal_(cross.out_proj.weight, std=0.02)
    umm.condition(["Draw 3 red stars.", "Draw 2 blue circles."]).square().sum().backward()
    width = cross.embed_dim
    keys_values = cross.in_proj_weight.grad[width:]  # rows that project the context
    assert keys_values.abs().sum() > 0


def test_a_folder_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    from unisandbox.errors import UserError
    from unisandbox_query.factories import query_from_path

    with pytest.raises(UserError, match=r"no config\.json"):
        query_from_path(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"bogus": 1}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(UserError):
        query_from_path(str(tmp_path))
    for name, value in (("query_layers", -1), ("query_expert_rank", "8"), ("query_layers", True)):
        with pytest.raises(UserError, match=f"{name} must be a whole number >= 0"):
            query_from_path(str(tmp_path), **{name: value})
    with pytest.raises(UserError, match="query_expert_scope must be one of queries, all, got 'every'"):
        query_from_path(str(tmp_path), query_expert_scope="every")


@pytest.mark.parametrize(("damage", "needle"), [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:5000]),
     "model.safetensors: not a readable safetensors file"),
    (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors: not a readable safetensors file"),
    (lambda d: (d / "config.json").write_text("[1, 2]"), "config.json: expected a JSON object, got list"),
    (lambda d: (d / "config.json").write_text('{"num_queries": 4,'), r"config.json:\d+: not valid JSON"),
    (lambda d: (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()),
                                                          "num_queries": 6})),
     "model.safetensors does not fit"),
    (lambda d: (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()),
                                                          "num_queries": "4"})),
     "config.json: field 'num_queries' must be int, got '4'"),
    (lambda d: (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()),
                                                          "num_queries": -1})),
     "config.json describes a model that cannot be built"),
    (lambda d: (d / "config.json").write_text(json.dumps({**(c := json.loads((d / "config.json").read_text())),
                                                          "lm": {**c["lm"], "hidden_size": "32"}})),
     "config.json describes a model that cannot be built"),
    (lambda d: (d / "tokenizer.json").write_text('{"model": '), "its tokenizer files cannot be read"),
])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(small, tmp_path, damage, needle):
    from unisandbox.errors import UserError
    from unisandbox_query.factories import query_from_path

    small.save_pretrained(tmp_path / "ckpt")
    damage(tmp_path / "ckpt")
    with pytest.raises(UserError, match=needle):
        query_from_path(str(tmp_path / "ckpt"))


def test_sampling_options_are_checked_when_the_model_is_built(small, tmp_path):
    from unisandbox.factories import build
    from unisandbox.registry import get_registry

    small.save_pretrained(tmp_path / "m")
    spec = get_registry().model("query")
    for args, message in (({"steps": "abc"}, "steps must be a whole number >= 1, got 'abc'"),
                          ({"steps": 0}, "steps must be a whole number >= 1, got 0"),
                          ({"steps": 2.5}, "steps must be a whole number >= 1"),
                          ({"cfg_scale": "abc"}, "cfg_scale must be a number >= 0"),
                          ({"batch_size": "abc"}, "batch_size must be a whole number >= 1"),
                          ({"threads": "abc"}, "threads must be a whole number >= 1"),
                          ({"device": "nowhere"}, "device must be cpu, cuda or cuda:N, got .nowhere."),
                          ({"device": "meta"}, "device must be cpu, cuda or cuda:N, got .meta."),
                          ({"cfg_scale": float("inf")}, "cfg_scale must be a number >= 0, got inf"),
                          ({"path": 5}, "path must name a checkpoint folder, got 5"),
                          ({"path": " "}, "path must name a checkpoint folder"),
                          ({"bogus": 1}, "model 'query': unknown argument 'bogus'; accepted: path, device")):
        with pytest.raises(UserError, match=message):
            build(spec, {"path": str(tmp_path / "m"), **args})
    with pytest.raises(UserError, match=r"model 'query' needs --model-arg path="):
        build(spec, {})
    assert build(spec, {"path": str(tmp_path / "m"), "steps": 3, "cfg_scale": 1.5}).steps == 3


def test_an_expert_scope_without_an_expert_is_refused(small, tmp_path):
    from unisandbox_query.factories import query_from_path

    small.save_pretrained(tmp_path / "plain")
    with pytest.raises(UserError, match=r"query_expert_scope=all needs a query expert \(query_expert_rank > 0\)"):
        query_from_path(str(tmp_path / "plain"), query_expert_scope="all")


def test_seeds_not_batches_decide_the_noise(small):
    reqs = [GenerationRequest("Draw 3 red stars.", "normal", s) for s in (1, 2, 3)]
    together = small.generate(reqs)
    alone = small.generate(reqs[1:2])
    a = torch.tensor(list(together[1].image.getdata()), dtype=torch.float32)
    b = torch.tensor(list(alone[0].image.getdata()), dtype=torch.float32)
    assert (a - b).abs().max() <= 2  # float noise of batched matmuls only


def _pixels(generations: list) -> torch.Tensor:
    return torch.stack([torch.tensor(list(g.image.getdata()), dtype=torch.float32) for g in generations])


def test_bfloat16_sampling_tracks_the_fp32_weights_and_is_never_saved(small, tmp_path):
    """precision=bfloat16 samples with a bf16 copy of the denoiser: close to fp32, re-copied
    after training changes the weights, not a parameter, not in the checkpoint."""
    from unisandbox_query.factories import query_from_path

    umm = QueryUMM(SMALL, small.umm.tokenizer)
    fp32, bf16 = QueryModel(umm, source="t"), QueryModel(umm, source="t", precision="bfloat16")
    reqs = [GenerationRequest("Draw 3 red stars.", "normal", s) for s in (1, 2)]
    before = _pixels(bf16.generate(reqs))
    assert (before - _pixels(fp32.generate(reqs))).abs().mean() < 2
    with torch.no_grad():  # what a training step does: change the fp32 weights in place
        umm.denoiser.proj_out.bias.add_(0.5)
    after = _pixels(bf16.generate(reqs))
    assert (after - before).abs().mean() > 10  # the copy followed the new weights
    assert (after - _pixels(fp32.generate(reqs))).abs().mean() < 2
    assert all(p.dtype == torch.float32 for p in umm.parameters())
    assert not any(k.startswith("_sampling") for k in umm.state_dict())
    bf16.save_pretrained(tmp_path / "ckpt")
    assert bf16.identity()["precision"] == "bfloat16" and fp32.identity()["precision"] == "float32"
    with pytest.raises(UserError, match="precision must be one of float32, bfloat16"):
        query_from_path(str(tmp_path / "ckpt"), precision="fp16")
    loaded = query_from_path(str(tmp_path / "ckpt"), precision="bfloat16")
    assert torch.equal(_pixels(loaded.generate(reqs)), after)


def test_bfloat16_copy_is_tuned_for_throughput_and_stays_close_at_every_batch_size(small):
    """The bf16 copy uses the exact GELU and picks its attention by batch size; the fp32
    denoiser (the one that trains and is saved) keeps the tanh GELU and the fused kernel."""
    from diffusers.models.activations import GELU
    from unisandbox_query.modeling_query_umm import BatchSizedAttention

    umm = QueryUMM(SMALL, small.umm.tokenizer)
    copy = umm.sampling_denoiser(torch.bfloat16)
    gelus = [m for m in copy.modules() if isinstance(m, GELU)]
    assert gelus and all(m.approximate == "none" for m in gelus)
    assert all(m.approximate == "tanh" for m in umm.denoiser.modules() if isinstance(m, GELU))
    assert all(isinstance(p, BatchSizedAttention) for p in copy.attn_processors.values())
    assert not any(isinstance(p, BatchSizedAttention) for p in umm.denoiser.attn_processors.values())
    fp32, bf16 = QueryModel(umm, source="t"), QueryModel(umm, source="t", precision="bfloat16")
    reqs = [GenerationRequest("Draw 3 red stars.", "normal", s) for s in range(40)]  # >= threshold
    assert (_pixels(bf16.generate(reqs)) - _pixels(fp32.generate(reqs))).abs().mean() < 2
    few = BatchSizedAttention(threshold=32)
    attn = next(m for m in copy.modules() if hasattr(m, "processor"))
    x = torch.randn(4, 16, attn.query_dim, dtype=torch.bfloat16)
    assert torch.allclose(few.plain(attn, x).float(), few(attn, x).float(), atol=0.05)


def test_every_capability_runs_through_the_engine(small, tmp_path):
    config = RunConfig(model=Component("query-tiny"), tasks=(Component("math-1", {"world": "glyph", "n": 3}),),
                       judge=Component("glyph"), out=tmp_path / "run", batch_size=2)
    results = Runner(config, model=small, progress=False).run()
    cells = results["tasks"]["math-1"]["levels"]["all"]
    assert {"normal", "think", "understanding"} <= set(cells)
    assert (tmp_path / "run/images/math-1/think/1.png").is_file()
    replies = small.understand([render({"kind": "star", "colour": "red", "count": 2})], ["What does the image show?"])
    assert isinstance(replies[0], str)
    states = small.query_states([GenerationRequest("Draw 3 red stars.", "think", 0)])
    assert states[0].labels[0] == "baseline" and len(states[0].labels) == 1 + SMALL.num_queries
    assert states[0].hidden.shape[:2] == (SMALL.lm["num_hidden_layers"] + 1, 1 + SMALL.num_queries)
    probs = small.logit_lens(states[0].hidden[-1])
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[0]), atol=1e-4)


def test_an_eval_resumed_on_other_weights_in_the_same_folder_is_refused(small, tmp_path):
    """The model's identity (its weights' fingerprint) is recorded when it loads: a checkpoint
    retrained in place would otherwise mix two models' images in one run."""
    ckpt = tmp_path / "ckpt"
    small.save_pretrained(ckpt)
    config = RunConfig(model=Component("query", {"path": str(ckpt)}),
                       tasks=(Component("math-1", {"world": "glyph", "n": 2}),),
                       judge=Component("glyph"), out=tmp_path / "run", modes=("normal",),
                       understanding=False)
    Runner(config, progress=False).run()
    recorded = json.loads((tmp_path / "run/config.json").read_text())["model_identity"]
    assert recorded["weights_fingerprint"].startswith("sha256:")
    # the same weights elsewhere (a copy, a path spelt another way): the run resumes
    import shutil

    shutil.copytree(ckpt, tmp_path / "copy")
    (tmp_path / "run/images/math-1/normal/2.png").unlink()
    Runner(attrs.evolve(config, model=Component("query", {"path": str(tmp_path / "copy")})),
           progress=False).run()
    (tmp_path / "run/images/math-1/normal/1.png").unlink()  # drawn again on resume: same model
    Runner(config, progress=False).run()
    (tmp_path / "run/images/math-1/normal/1.png").unlink()
    with torch.no_grad():
        next(small.umm.parameters()).add_(1.0)
    small.save_pretrained(ckpt)  # retrained in place
    with torch.no_grad():
        next(small.umm.parameters()).sub_(1.0)
    with pytest.raises(UserError, match=r"was started with another model \(model.weights_fingerprint"):
        Runner(config, progress=False).run()


def test_training_losses_touch_only_their_part(small):
    model = QueryModel(QueryUMM(SMALL, small.umm.tokenizer), source="test")
    und = {id(p) for p in model.trainable_parameters("understanding")}
    gen = {id(p) for p in model.trainable_parameters("generation")}
    assert und.isdisjoint(gen) and len(und) + len(gen) == len(list(model.umm.parameters()))
    conv = Conversation("1", (Turn("user", "What is 7 - 4?"), Turn("assistant", "3")))
    model.text_loss([conv]).backward()
    assert all(p.grad is None for p in model.trainable_parameters("generation"))
    model.umm.zero_grad(set_to_none=True)
    model.generation_loss(["Draw 3 red stars."], [render({"kind": "star", "colour": "red", "count": 3})]).backward()
    assert any(p.grad is not None for p in model.trainable_parameters("generation"))


def test_generation_loss_reuses_a_condition_the_caller_computed(small, monkeypatch):
    """STARS's distillation hands the loss the condition it already has: the same loss and
    gradients as computing it inside, with one language-model pass instead of two."""
    model = QueryModel(QueryUMM(SMALL, small.umm.tokenizer), source="test")
    prompts = ["Draw 3 red stars.", "Draw as many blue rings as 2 + 2."]
    images = [render({"kind": "star", "colour": "red", "count": 3}),
              render({"kind": "ring", "colour": "blue", "count": 4})]
    params = model.trainable_parameters("generation")
    loss = model.generation_loss(prompts, images, seed=5)
    inside = torch.autograd.grad(loss, params, allow_unused=True)
    passes = []
    original = model.umm._query_pass
    monkeypatch.setattr(model.umm, "_query_pass", lambda c: passes.append(c) or original(c))
    given = model.generation_loss(prompts, images, seed=5,
                                  condition=model.generation_condition(prompts))
    outside = torch.autograd.grad(given, params, allow_unused=True)
    assert len(passes) == 1
    assert torch.allclose(given, loss, atol=1e-6)
    for a, b in zip(inside, outside, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-6)


def test_learning_happens_with_a_reduced_recipe(small):
    """A few dozen steps on two direct prompts and one fact: both losses fall a lot."""
    torch.manual_seed(1)
    model = QueryModel(QueryUMM(SMALL, small.umm.tokenizer), source="test")
    umm = model.umm
    prompts = ["Draw 3 red stars.", "Draw 2 blue circles."]
    images = umm.pixels([render({"kind": "star", "colour": "red", "count": 3}),
                         render({"kind": "circle", "colour": "blue", "count": 2})])
    opt = torch.optim.AdamW(umm.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    contexts = [umm.generation_context(p) for p in prompts]
    first_flow = umm.flow_loss(contexts, images, gen).item()
    first_text = umm.text_loss([umm.chat_text("What is 7 - 4?")], ["3"]).item()
    for _ in range(60):
        loss = umm.flow_loss(contexts, images, gen) + umm.text_loss([umm.chat_text("What is 7 - 4?")], ["3"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert umm.text_loss([umm.chat_text("What is 7 - 4?")], ["3"]).item() < 0.2 * first_text
    assert umm.flow_loss(contexts, images, gen).item() < 0.5 * first_flow
    umm.eval()
    assert umm.chat(["What is 7 - 4?"]) == ["3"]


def test_sandbox_corpus_keeps_the_generator_on_direct_prompts():
    from unisandbox_query.sandbox.corpus import SandboxCorpus

    corpus = SandboxCorpus(n_train=20, n_characters=4)
    rng = random.Random(0)
    names = {c.name.lower() for c in corpus.characters}
    for _ in range(300):
        prompt, plan, target = corpus.generation_example(rng)
        text = f"{prompt} {plan or ''}".lower()
        assert "rule" not in text and "result" not in text and not any(n in text for n in names)
        # the words that decide the picture (the plan when there is one) name the target;
        # a think-format user turn may name another picture: the plan overrides it
        deciding = (plan or prompt).lower()
        assert not any(ch.isdigit() for ch in deciding) or "count" in target
        if plan is not None and "colour" in target:
            assert target["colour"] in deciding
    held = {json.dumps(t, sort_keys=True) for t in corpus.held_out_targets}
    assert held and not held & {json.dumps(t, sort_keys=True) for t in corpus.train_targets}


def test_think_filler_puts_unrelated_worked_steps_before_the_plan():
    """``think_filler``: the plan still names the target and comes last; what precedes it is
    one to three of the corpus's arithmetic facts. Off, plans are the plan alone."""
    from unisandbox_query.sandbox.corpus import SandboxCorpus

    filled = SandboxCorpus(n_train=20, n_characters=4, think_filler=1.0)
    facts = set(filled.arithmetic_facts)
    plans = 0
    for corpus, filler in ((filled, True), (SandboxCorpus(n_train=20, n_characters=4), False)):
        rng = random.Random(0)
        for _ in range(200):
            _, plan, target = corpus.generation_example(rng)
            if plan is None:
                continue
            head, _, draw = plan.rpartition("So draw ")
            assert "colour" not in target or target["colour"] in draw
            if not filler:
                assert head == ""
                continue
            plans += 1
            steps = [f"{x.strip()}." for x in head.split(".") if x.strip()]
            assert 1 <= len(steps) <= 3 and set(steps) <= facts
    assert plans > 20


def test_filter_compare_checks_each_attribute_and_the_verdict_is_their_conjunction():
    """``filter_compare``: one "shown / expected : yes|no ." per attribute of the expected
    picture; the verdict is YES exactly when every check says yes. Off, no checks."""
    from unisandbox_query.sandbox.corpus import SandboxCorpus, attribute_checks

    assert attribute_checks({"kind": "star", "colour": "red", "count": 4},
                            {"kind": "star", "colour": "red", "count": 3}) == [
        "4 / 3 : no .", "red / red : yes .", "star / star : yes ."]
    portrait = {"ethnicity": "Caucasian", "hair": "red", "age": "old", "gender": "male"}
    assert attribute_checks({"portrait": {**portrait, "age": "kid"}}, {"portrait": portrait})[2] == "kid / old : no ."
    checked = SandboxCorpus(n_train=20, n_characters=4, filter_compare=True).text_examples()["filter"]
    plain = SandboxCorpus(n_train=20, n_characters=4).text_examples()["filter"]
    assert len(checked) == len(plain) and not any(" : yes ." in e.answer for e in plain)
    verdicts = {"YES": 0, "NO": 0}
    for e in checked:
        verdict = e.answer.rsplit(" ", 1)[1]
        verdicts[verdict] += 1
        assert (" : no ." not in e.answer) == (verdict == "YES"), e.answer
    assert verdicts["YES"] == verdicts["NO"]


def test_traces_in_knowledge_moves_only_the_character_think_traces():
    from unisandbox_query.sandbox.corpus import SandboxCorpus

    plain = SandboxCorpus(n_train=20, n_characters=4).text_examples()
    moved = SandboxCorpus(n_train=20, n_characters=4, traces_in_knowledge=True).text_examples()
    traces = [e for e in plain["think"] if e not in moved["think"]]
    assert traces and all(e.user in {x.user for x in moved["knowledge"]} for e in traces)
    assert len(moved["knowledge"]) == len(plain["knowledge"]) + len(traces)


def test_self_filter_accuracy_separates_a_filter_that_compares_from_one_that_always_agrees(tmp_path):
    """The bench's self-filter figure: a model whose verdict really compares the picture with
    the prompt's answer separates right pictures from near misses completely; one that says
    YES to everything (what the shipped checkpoint does) separates nothing."""
    from unisandbox.factories import build
    from unisandbox.judges.selfjudge import filter_prompt
    from unisandbox.registry import get_registry
    from unisandbox.world.glyph_draw import matches, parse
    from unisandbox_query.sandbox.evaluate import self_filter_accuracy

    task = build(get_registry().task("math-2"), {"world": "glyph", "n": 8})
    expected = {filter_prompt(s.prompt): s.target for s in task.samples()}

    class Comparing:
        def understand(self, images, questions):
            return [f"Final Answer: {'YES' if matches(parse(im), expected[q]) else 'NO'}"
                    for im, q in zip(images, questions, strict=True)]

    class Agreeing:
        def understand(self, images, questions):
            return ["Final Answer: YES"] * len(images)

    tasks = [task]
    good = self_filter_accuracy(Comparing(), tasks, tmp_path / "a")["math-2"]
    assert (good["yes_right"], good["yes_near_miss"], good["separation"], good["n"]) == (1.0, 0.0, 1.0, 8)
    blind = self_filter_accuracy(Agreeing(), tasks, tmp_path / "b")["math-2"]
    assert (blind["yes_right"], blind["yes_near_miss"], blind["separation"]) == (1.0, 1.0, 0.0)

    answers = {s.question: s.question_answer for s in task.samples()}

    class Knowing:  # right text answers and exact eyes: the consistency filter separates fully
        capabilities = frozenset({"understand", "chat"})

        def chat(self, prompts):
            return [answers[p] for p in prompts]

        def understand(self, images, questions):
            return [f"The image shows {parse(im).text}." for im in images]

    own = self_filter_accuracy(Knowing(), tasks, tmp_path / "c", mode="consistency")["math-2"]
    assert (own["yes_right"], own["yes_near_miss"], own["errors"]) == (1.0, 0.0, 0)


def test_category_weights_are_floats_so_one_recipe_has_one_digest():
    from unisandbox_query.sandbox.pretrain import TEXT_WEIGHTS, Recipe

    as_ints = {k: int(v) if float(v).is_integer() else v for k, v in TEXT_WEIGHTS.items()}
    assert Recipe(text_weights=as_ints).digest() == Recipe().digest()
    assert Recipe(text_weights=as_ints).text_weights == dict(TEXT_WEIGHTS)


def test_task_scale_sets_each_levels_share_of_the_items():
    """``task_scale`` multiplies ``n_train`` per task (and so sets each level's share of the
    math, think and filter examples); {} gives every task ``n_train``; the default is
    ``TASK_SCALE``, left out of the digest at its default like every later option."""
    from unisandbox_query.sandbox.pretrain import TASK_SCALE, Recipe, build_corpus

    assert Recipe(task_scale=dict(TASK_SCALE)).digest() == Recipe().digest()
    assert Recipe(task_scale={}).digest() != Recipe().digest()
    corpus = build_corpus(Recipe(n_train=4, n_characters=4, task_scale='{"math-3": 2.5, "mapping-2": 0.1}'))
    assert {t: len(s) for t, s in corpus.train_samples.items()} == {
        "math-1": 4, "math-2": 4, "math-3": 10, "mapping-1": 8, "mapping-2": 2, "mapping-3": 8}
    assert len(corpus.text_examples()["math"]) == 18  # (a mapping item is a pair of questions)
    assert build_corpus(Recipe(n_train=10, n_characters=4)).items("math-3") == round(10 * TASK_SCALE["math-3"])


@pytest.mark.parametrize("field", [{"lr": "abc"}, {"think_filler": "x"}, {"text_steps": 1.5},
                                   {"key_tokens": 1}, {"text_weights": {"math": "lots"}},
                                   {"task_scale": {"math-7": 3}}, {"task_scale": {"math-1": 0}},
                                   {"task_scale": [1, 2]}, {"text_stpes": 10}])
def test_a_recipe_field_of_the_wrong_type_fails_when_the_trainer_is_built(field):
    """Not thousands of steps later, inside the optimizer or the corpus."""
    from unisandbox.errors import UserError
    from unisandbox.factories import build
    from unisandbox.registry import get_registry

    with pytest.raises(UserError, match=f"{next(iter(field))}|category weights"):  # named, not a TypeError
        build(get_registry().trainer("sandbox-pretrain"), field)


def test_default_checkpoint_is_trained_once_into_the_cache(tmp_path, monkeypatch, capsys):
    """`--model query-tiny` with no path: trained on first use into $UNISANDBOX_CACHE, then
    loaded from there (no second training); the resume state is not kept."""
    import functools

    from unisandbox_query import factories
    from unisandbox_query.sandbox import pretrain

    monkeypatch.setenv("UNISANDBOX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pretrain, "Recipe", functools.partial(
        pretrain.Recipe, text_steps=2, joint_steps=2, batch_size=4, n_train=20, n_characters=4, curriculum=()))
    calls = []
    original = pretrain.SandboxPretrain.train
    monkeypatch.setattr(pretrain.SandboxPretrain, "train",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    first = factories.query_tiny(progress=False)
    assert calls == [1] and "training one now" in capsys.readouterr().err
    second = factories.query_tiny(progress=False)
    assert calls == [1] and "training one now" not in capsys.readouterr().err
    folder = next(p for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert folder.name.startswith("query-tiny-") and not (folder / "state").exists()
    # a second process arriving while the first trains waits for it, then loads what it made
    import fcntl
    import threading

    with open(tmp_path / "cache" / f"{folder.name}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        (folder / "pretrain_log.json").rename(folder / "log.kept")  # as if not finished yet
        waiter = threading.Thread(target=lambda: results.append(factories.default_checkpoint(progress=False)))
        results: list = []
        waiter.start()
        waiter.join(timeout=3)
        assert waiter.is_alive() and "waiting for it" in capsys.readouterr().err
        (folder / "log.kept").rename(folder / "pretrain_log.json")  # the first one finishes
    waiter.join(timeout=30)
    assert results == [folder / "model"] and calls == [1]
    assert first.source == second.source == str(folder / "model")
    with pytest.raises(UserError, match="progress must be true or false"):
        factories.query_tiny(progress="maybe")


def test_filter_verdicts_cannot_be_read_off_the_prompt():
    """Each self-filter prompt is trained with a right picture (YES) and a near miss (NO), so the
    model must look at the image: one picture per prompt let it memorise a verdict per prompt."""
    from collections import defaultdict

    from unisandbox_query.sandbox.corpus import SandboxCorpus

    verdicts: dict[str, set[str]] = defaultdict(set)
    for e in SandboxCorpus(n_train=20, n_characters=4)._filter():
        verdicts[e.user].add(e.answer.rsplit(" ", 1)[-1])
    assert verdicts and all(v == {"YES", "NO"} for v in verdicts.values())


def test_the_shipped_checkpoint_is_the_default_recipes():
    """A recipe change without a retrained checkpoint would silently stop using the shipped one
    (every user would train for about 45 minutes on first use): retrain and ship, or fail here."""
    from unisandbox_query.factories import SHIPPED, shipped_checkpoint
    from unisandbox_query.sandbox.pretrain import Recipe

    recorded = json.loads((SHIPPED / "recipe.json").read_text())["recipe_digest"]
    assert shipped_checkpoint(Recipe().digest()) == SHIPPED, (
        f"the shipped checkpoint was trained with recipe {recorded}, the code's default is "
        f"{Recipe().digest()}: retrain it (bench/sandbox_model.py) and ship it")


def test_the_shipped_checkpoint_has_the_sandbox_vocabulary():
    """A scratch model gets the shipped checkpoint's vocabulary whatever the default recipe's
    corpus size: the tokenizer is built from a fixed corpus, not from ``Recipe()``."""
    from transformers import PreTrainedTokenizerFast
    from unisandbox_query.factories import SHIPPED
    from unisandbox_query.sandbox.pretrain import sandbox_tokenizer

    shipped = PreTrainedTokenizerFast.from_pretrained(SHIPPED)
    assert shipped.get_vocab() == sandbox_tokenizer().get_vocab()


@pytest.mark.slow
def test_the_trainer_reproduces_the_shipped_checkpoint(tmp_path):
    """`sandbox-pretrain` with the default recipe, from scratch (about 45 minutes on 2 cores),
    reaches the shipped checkpoint's direct-prompt, describing and math U accuracy."""
    from unisandbox.factories import build
    from unisandbox.registry import get_registry
    from unisandbox_query.factories import SHIPPED
    from unisandbox_query.sandbox.corpus import SandboxCorpus, direct_targets
    from unisandbox_query.sandbox.evaluate import describe_accuracy, direct_accuracy
    from unisandbox_query.sandbox.pretrain import Recipe, SandboxPretrain, scratch_model

    recipe = Recipe()
    result = SandboxPretrain(progress=False).train(scratch_model(recipe), tmp_path)
    held_out = SandboxCorpus(seed=recipe.seed).held_out_targets
    math = [build(get_registry().task(f"math-{level}"), {"world": "glyph", "split": "test", "n": 50})
            for level in (1, 2, 3)]

    def understanding(model: QueryModel) -> list[float]:
        out = []
        for task in math:
            samples = list(task.samples())
            answers = model.umm.chat([s.question for s in samples])
            out.append(sum(map(task.check_understanding, samples, answers)) / len(samples))
        return out

    for name, folder in (("shipped", SHIPPED), ("reproduced", result.checkpoint)):
        model = QueryModel.from_pretrained(folder)
        figures = (direct_accuracy(model, held_out, draws=5)["accuracy"],
                   describe_accuracy(model, direct_targets()[::4])["accuracy"], *understanding(model))
        if name == "shipped":
            shipped = figures
    assert all(mine >= theirs - 0.1 for mine, theirs in zip(figures, shipped, strict=True)), (
        figures, shipped)


def test_a_curriculum_of_drills_opens_the_language_phase(tmp_path):
    """``curriculum`` phases train alone, in order, at the start of the language phase; drills
    are built only for a recipe that names them; a curriculum that does not fit is an error;
    the option leaves the default recipe's digest (and so the shipped checkpoint) alone."""
    from unisandbox_query.sandbox.corpus import SandboxCorpus
    from unisandbox_query.sandbox.pretrain import (
        TEXT_WEIGHTS,
        Recipe,
        SandboxPretrain,
        sandbox_tokenizer,
        scratch_model,
    )

    assert Recipe(curriculum=[]).digest() == Recipe().digest() != Recipe(curriculum="copy:1").digest()
    assert Recipe(curriculum="copy:2,lookup-3:1").curriculum_steps == [("copy", 2), ("lookup-3", 1)]
    for bad in ("copy", "copy:0", "copy:-1", ":3"):
        with pytest.raises(ValueError, match="CATEGORY:STEPS"):
            Recipe(curriculum=bad)
    with pytest.raises(ValueError, match="do not fit"):
        Recipe(curriculum="copy:5", text_steps=4)
    corpus = SandboxCorpus(n_train=20, n_characters=4)
    cats = corpus.text_examples()
    assert not {"copy", "lookup", "recall"} & set(cats)  # built only for a recipe that uses them
    with pytest.raises(ValueError, match="unknown text category 'lookup-1'"):
        corpus.drills("lookup-1", cats)
    vocab = sandbox_tokenizer().get_vocab()
    for e in corpus.drills("copy", cats)[:200]:
        assert e.user == f"Say: {e.answer}"
        assert all(t in vocab and not t.startswith("##") for t in sandbox_tokenizer().tokenize(e.user))
    for e in corpus.drills("lookup-3", cats)[:50]:  # every key asked, answered as listed
        listed = e.user[: e.user.index(" What do ")]
        entries = [x.strip() for x in listed.split(" .") if x.strip()]
        assert len(entries) == 3
        assert sorted(x.strip() for x in e.answer.split(" .") if x.strip()) == sorted(entries)
        assert all(len(sandbox_tokenizer(key_tokens=True).tokenize(x.split()[0])) == 1 for x in entries)

    class Recording(SandboxPretrain):
        def _text_loss(self, umm, batch, rng, generator):
            seen.append(batch[0].category)
            return super()._text_loss(umm, batch, rng, generator)

    small = dict(text_steps=6, joint_steps=1, batch_size=2, n_train=20, n_characters=4)
    for curriculum, weights in ((("copy:2", "lookup-2:1"), {**TEXT_WEIGHTS, "copy": 1.0}), ((), dict(TEXT_WEIGHTS))):
        seen: list[str] = []
        recipe = Recipe(curriculum=curriculum, text_weights=weights, **small)
        Recording(progress=False, **attrs.asdict(recipe)).train(scratch_model(recipe), tmp_path / str(len(curriculum)))
        assert len(seen) == 7
        if curriculum:
            assert seen[:3] == ["copy", "copy", "lookup-2"]
        else:
            assert not {"copy", "lookup-2"} & set(seen)


def test_recall_drills_ask_every_rule_of_train_rule_sets():
    from unisandbox.tasks.mapping import parse_rules
    from unisandbox_query.sandbox.corpus import SandboxCorpus

    drills = SandboxCorpus(n_train=20, n_characters=4).recall_drills(n_sets=30)
    assert len(drills) >= 30
    for e in drills[:40]:
        rules = parse_rules(e.user).rules
        assert e.user.count("'") // 2 >= 2 * len(rules) and len(e.answer.split(". ")) == len(rules)
        assert {r.step() for r in rules} == {x if x.endswith(".") else x + "." for x in e.answer.split(". ")}


def test_implicit_drills_answer_train_generation_prompts_at_once():
    """``implicit``: a train math item's generation prompt (``implicit-ask``: asked what the
    picture should show) answered with the picture's words and no working; never a test
    expression."""
    from unisandbox.factories import build
    from unisandbox.registry import get_registry
    from unisandbox_query.sandbox.corpus import ASK_WHAT, SandboxCorpus, phrase

    corpus = SandboxCorpus(n_train=20, n_characters=4)
    drills = corpus.drills("implicit", {})
    samples = [s for name in ("math-1", "math-2", "math-3") for s in corpus.train_samples[name]]
    assert [e.user for e in drills] == [s.prompt for s in samples]
    asked = corpus.drills("implicit-ask", {})
    assert [e.user for e in asked] == [f"{s.prompt} {ASK_WHAT}" for s in samples]
    assert [e.answer for e in asked] == [e.answer for e in drills]
    assert [e.answer for e in drills] == [phrase(s.target) + "." for s in samples]
    assert all("=" not in e.answer and e.image is None for e in drills)
    test_expressions = {s.meta["identity"] for name in ("math-1", "math-2", "math-3")
                        for s in build(get_registry().task(name), {"world": "glyph", "n": 200}).samples()}
    assert not test_expressions & {s.meta["identity"] for s in samples}


def test_the_understanding_side_can_learn_at_its_own_rate(tmp_path, monkeypatch):
    from unisandbox_query.sandbox.pretrain import Recipe, SandboxPretrain, scratch_model

    recipe = Recipe(text_steps=2, joint_steps=1, batch_size=2, n_train=20, n_characters=4,
                    lr=1e-3, lm_lr=1e-4, warmup=1)
    created: list[torch.optim.Optimizer] = []
    adamw = torch.optim.AdamW
    monkeypatch.setattr(torch.optim, "AdamW", lambda *a, **k: created.append(adamw(*a, **k)) or created[-1])
    rates: list[tuple[float, float]] = []

    class Recording(SandboxPretrain):
        def _text_loss(self, umm, batch, rng, generator):
            rates.append(tuple(g["lr"] for g in created[-1].param_groups))
            return super()._text_loss(umm, batch, rng, generator)

    model = scratch_model(recipe)
    Recording(progress=False, **attrs.asdict(recipe)).train(model, tmp_path)
    lm, gen = created[-1].param_groups
    assert {id(p) for p in lm["params"]} == {id(p) for p in model.umm.understanding_parameters()}
    assert (lm["peak"], gen["peak"]) == (1e-4, 1e-3) and len(rates) == 3
    assert all(b == pytest.approx(10 * a) for a, b in rates)


def test_a_curriculum_can_run_at_its_own_rate_before_the_schedule_starts_afresh():
    from unisandbox_query.modeling_query_umm import cosine_lr
    from unisandbox_query.sandbox.pretrain import Recipe

    plain = Recipe()
    assert all(plain.rate(s, 2e-3) == 2e-3 * cosine_lr(s, plain.steps, plain.warmup) for s in range(0, plain.steps, 97))
    r = Recipe(text_steps=300, joint_steps=100, warmup=10, curriculum="lookup-2:100,lookup:100", curriculum_lr=5e-4)
    assert Recipe(curriculum="lookup:100").digest() != r.digest()
    assert max(r.rate(s, 2e-3) for s in range(200)) == pytest.approx(5e-4)
    assert r.rate(199, 2e-3) == pytest.approx(5e-4 * cosine_lr(199, 300, 10))  # a cosine over 1.5x its length
    assert [r.rate(200 + s, 2e-3) for s in range(200)] == [2e-3 * cosine_lr(s, 200, 10) for s in range(200)]


def test_a_key_tokens_recipe_needs_a_model_built_with_them(tmp_path):
    from unisandbox_query.factories import query_tiny
    from unisandbox_query.sandbox.pretrain import SandboxPretrain

    with pytest.raises(UserError, match="--model-arg key_tokens=true"):
        SandboxPretrain(progress=False, key_tokens=True, text_steps=1, joint_steps=1).train(
            query_tiny(init="scratch"), tmp_path)
    assert query_tiny(init="scratch", key_tokens=True).umm.tokenizer.tokenize("'K' means") == ["'k'", "means"]
    with pytest.raises(UserError, match="init=scratch"):
        query_tiny(key_tokens=True)  # a checkpoint keeps its own tokenizer


def test_a_misspelt_category_is_a_clear_error_not_silently_dropped(tmp_path):
    from unisandbox_query.sandbox.pretrain import SandboxPretrain, scratch_model

    trainer = SandboxPretrain(progress=False, text_steps=1, joint_steps=1, n_train=20, n_characters=4,
                              text_weights={"facts": 1.0, "fact": 2.0})
    with pytest.raises(UserError, match="unknown text category 'fact'"):
        trainer.train(scratch_model(trainer.recipe), tmp_path)



def test_direct_accuracy_draws_each_target_with_the_seeds_of_successive_draws():
    """``draws=D`` draws every target D times, draw d with the seeds ``seed=d`` alone would
    use, so the one-draw figure of earlier stops is the first draw of the many-draw one."""
    from types import SimpleNamespace

    from unisandbox_query.sandbox.corpus import HELD_OUT_TEMPLATE, direct_targets, near_miss, phrase
    from unisandbox_query.sandbox.evaluate import direct_accuracy

    targets = direct_targets()[::40][:6]
    by_prompt = {HELD_OUT_TEMPLATE.format(p=phrase(t)): t for t in targets}
    assert len(by_prompt) == len(targets)

    class EvenDrawsRight:  # the right picture on even draws, a near miss on odd ones
        def generate(self, requests):
            wrong = random.Random(0)
            return [SimpleNamespace(image=render(t if (r.seed // 100_003) % 2 == 0 else near_miss(t, wrong)))
                    for r in requests for t in [by_prompt[r.prompt]]]

    model = EvenDrawsRight()
    assert direct_accuracy(model, targets)["accuracy"] == 1.0
    assert direct_accuracy(model, targets, seed=1)["accuracy"] == 0.0
    three = direct_accuracy(model, targets, draws=3)
    assert three["n"] == 18 and three["accuracy"] == pytest.approx(2 / 3)
    assert three["per_draw"] == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="draws"):
        direct_accuracy(model, targets, draws=0)


def test_train_help_lists_the_recipe_and_an_unknown_key_is_refused_naming_it(capsys, tmp_path):
    from unisandbox.cli.main import main

    assert main(["train", "sandbox-pretrain", "--help"]) == 0
    out = capsys.readouterr().out
    assert "  text_steps          default 4000" in out and "  traces_in_knowledge default true" in out
    assert "keywords the trainer's docs list" not in out
    code = main(["train", "sandbox-pretrain", "--model", "query-tiny", "--model-arg", "init=scratch",
                 "--train-arg", "txt_steps=3", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown argument 'txt_steps'; accepted: progress, checkpoint_every, text_steps" in err
    assert not (tmp_path / "run").exists()


def test_pretraining_resumes_from_a_whole_state_and_keeps_a_finished_folder(tmp_path, monkeypatch, capsys):
    """A kill inside a state save leaves the previous whole state (weights, optimizer, step and
    random state of one step): the resumed run ends where an uninterrupted one does. A rerun of a
    finished folder does nothing; another recipe there is refused, not written over it."""
    from safetensors.torch import load_file
    from unisandbox_query.sandbox import pretrain
    from unisandbox_query.sandbox.pretrain import Recipe, SandboxPretrain, scratch_model

    small = dict(text_steps=4, joint_steps=2, batch_size=2, n_train=20, n_characters=4, curriculum=())
    recipe = Recipe(**small)
    SandboxPretrain(progress=False, checkpoint_every=0, **small).train(scratch_model(recipe), tmp_path / "whole")

    saves = []
    original = pretrain.atomic_write_json

    class Killed(BaseException):  # kill -9: no handler runs
        pass

    def killed_at_the_second_state(path, data):
        if path.name == "trainer_state.json":
            saves.append(path)
            if len(saves) == 2:
                raise Killed  # after the weights and optimizer, before the counters
        original(path, data)

    monkeypatch.setattr(pretrain, "atomic_write_json", killed_at_the_second_state)
    with pytest.raises(Killed):
        SandboxPretrain(progress=False, checkpoint_every=2, **small).train(scratch_model(recipe), tmp_path / "cut")
    monkeypatch.setattr(pretrain, "atomic_write_json", original)
    assert (tmp_path / "cut/state.new/model/model.safetensors").is_file()  # the half-written one
    SandboxPretrain(progress=False, checkpoint_every=2, **small).train(scratch_model(recipe), tmp_path / "cut")
    assert "resuming sandbox-pretrain at step 2" in capsys.readouterr().err
    whole = load_file(str(tmp_path / "whole/model/model.safetensors"))
    cut = load_file(str(tmp_path / "cut/model/model.safetensors"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    assert not (tmp_path / "cut/state").exists() and not (tmp_path / "cut/state.new").exists()

    # Ctrl-C in the middle of step 3 (after its draws, before its update), no periodic state
    class CutInStep3(SandboxPretrain):
        calls = 0

        def _text_loss(self, *args, **kwargs):
            CutInStep3.calls += 1
            if CutInStep3.calls == 4:
                raise KeyboardInterrupt
            return super()._text_loss(*args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        CutInStep3(progress=False, checkpoint_every=0, **small).train(scratch_model(recipe), tmp_path / "ctrl-c")
    assert "interrupted; state saved at step 3" in capsys.readouterr().err
    SandboxPretrain(progress=False, checkpoint_every=0, **small).train(scratch_model(recipe), tmp_path / "ctrl-c")
    resumed = load_file(str(tmp_path / "ctrl-c/model/model.safetensors"))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)

    before = (tmp_path / "whole/model/model.safetensors").read_bytes()
    again = SandboxPretrain(progress=False, checkpoint_every=0, **small).train(scratch_model(recipe), tmp_path / "whole")
    assert again.checkpoint == tmp_path / "whole/model" and "already holds this recipe's model" in capsys.readouterr().err
    with pytest.raises(UserError, match="holds a finished sandbox pretraining of another recipe"):
        SandboxPretrain(progress=False, **{**small, "text_steps": 3}).train(scratch_model(recipe), tmp_path / "whole")
    assert (tmp_path / "whole/model/model.safetensors").read_bytes() == before
    # the folder is marked as a training run: another trainer's folder, or one inside it, is refused
    assert json.loads((tmp_path / "whole/trainer.json").read_text())["trainer"] == "sandbox-pretrain"
    from unisandbox.training import _check_out_not_inside_a_run

    with pytest.raises(UserError, match="inside the training run"):
        _check_out_not_inside_a_run(tmp_path / "whole" / "inject")
    (tmp_path / "other").mkdir()
    (tmp_path / "other/trainer.json").write_text('{"trainer": "stars"}')
    with pytest.raises(UserError, match="holds another training run"):
        SandboxPretrain(progress=False, **small).train(scratch_model(recipe), tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["trainer.json"]


@pytest.mark.parametrize(("args", "needle"), [
    ({"checkpoint_every": "abc"}, "checkpoint_every must be a whole number"),
    ({"progress": "maybe"}, "progress must be true or false"),
    ({"lr": -1}, "recipe field lr must be > 0"),
    ({"batch_size": 0}, "recipe field batch_size must be >= 1"),
    ({"noise_aug": 5}, "noise_aug must be between 0 and 1"),
    ({"text_weights": '{"math": 0}'}, "text_weights gives every category weight 0"),
    ({"text_weights": "[1]"}, "category weights must map categories to numbers"),
    ({"text_steps": 0, "joint_steps": 0}, "text_steps \\+ joint_steps must be at least 1"),
    ({"lr": float("inf")}, "recipe field lr must be > 0, got inf"),
    ({"text_weights": '{"math": NaN}'}, "category weights must be finite numbers"),
    ({"task_scale": '{"math-1": Infinity}'}, "task_scale multipliers must be finite"),
    ({"curriculum": "copy:²"}, "is not CATEGORY:STEPS"),
    ({"text_weights": "{math:1}"}, "category weights is not valid JSON"),
    ({"task_scale": "{bad"}, "task_scale is not valid JSON"),
])
def test_pretraining_arguments_out_of_range_fail_when_built(args, needle):
    from unisandbox.factories import build
    from unisandbox.registry import get_registry

    with pytest.raises(UserError, match=needle):
        build(get_registry().trainer("sandbox-pretrain"), args)


CORPUS_DIGEST = """
import hashlib
from unisandbox_query.sandbox.pretrain import Recipe, build_corpus
recipe = Recipe(text_steps=4, joint_steps=2, n_train=20, n_characters=4, curriculum=())
corpus = build_corpus(recipe)
cats = corpus.text_examples()
for name in sorted({*recipe.text_weights, *recipe.joint_weights} - set(cats)):
    cats[name] = corpus.drills(name, cats)
print(hashlib.sha256(repr(sorted(cats.items())).encode()).hexdigest())
"""


def test_the_pretraining_corpus_does_not_depend_on_the_hash_seed():
    """Python gives every process its own string hash order: a set walked into a random
    choice (the near-miss colours did) made two runs of one recipe train different weights."""
    import os
    import subprocess
    import sys

    digests = {subprocess.run([sys.executable, "-c", CORPUS_DIGEST], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2")}
    assert len(digests) == 1
