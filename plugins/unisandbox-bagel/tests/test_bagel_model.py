"""The tiny random BAGEL through every protocol method: generation, understanding, probes,
training hooks, save -> load, device maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from unisandbox.errors import UserError
from unisandbox.factories import build
from unisandbox.protocols.model import CapabilityError
from unisandbox.records import Conversation, GenerationRequest, Turn
from unisandbox.registry import get_registry
from unisandbox_bagel.model import GEN_THINK_SYSTEM_PROMPT
from unisandbox_bagel.plugin import bagel


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_generate_normal_and_think(tiny_model) -> None:
    reqs = [GenerationRequest("draw three red stars", "normal", 11),
            GenerationRequest("draw three red stars", "think", 11),
            GenerationRequest("draw two cats", "normal", 12)]
    out = tiny_model.generate(reqs)
    assert [g.image.size for g in out] == [(64, 64)] * 3
    assert out[0].think is None and out[2].think is None
    assert isinstance(out[1].think, str)
    assert len(tiny_model._encode(out[1].think)) <= 5  # think_tokens=6 counts the start token
    # think mode conditions on more context: a different image from the same noise
    assert not np.array_equal(pixels(out[0].image), pixels(out[1].image))
    alone = tiny_model.generate([reqs[0]])[0]
    assert np.array_equal(pixels(tiny_model.generate([reqs[0]])[0].image), pixels(alone.image))
    assert np.abs(pixels(alone.image) - pixels(out[0].image)).max() <= 2  # batch of 2 vs 1
    other_seed = tiny_model.generate([GenerationRequest("draw three red stars", "normal", 99)])[0]
    assert np.abs(pixels(other_seed.image) - pixels(alone.image)).max() > 10
    with pytest.raises(ValueError, match="unknown generation mode"):
        tiny_model.generate([GenerationRequest("x", "dream", 1)])


def test_batch_composition_never_changes_a_sample(tiny_model) -> None:
    alone = tiny_model.generate([GenerationRequest("draw one blue circle", "normal", 7)])[0]
    batch = tiny_model.generate([GenerationRequest("draw many green flowers and a dog", "normal", 8),
                                 GenerationRequest("draw one blue circle", "normal", 7)])[1]
    assert np.abs(pixels(alone.image) - pixels(batch.image)).max() <= 2
    noise = tiny_model._noise([7, 8], 4)
    assert torch.equal(noise[0], tiny_model._noise([7], 4)[0])


def test_think_context_and_cfg_branch(tiny_model) -> None:
    cond, uncond, thinks, _, _ = tiny_model._contexts(["draw a cat"], think=True)
    system = len(tiny_model._encode(GEN_THINK_SYSTEM_PROMPT)) + 2
    assert uncond.length == system and int(uncond.next_pos[0]) == system
    prompt = len(tiny_model._encode("draw a cat")) + 2
    plan = len(tiny_model._encode(thinks[0])) + 2
    assert cond.length == system + prompt + plan
    cond, uncond, thinks, _, _ = tiny_model._contexts(["draw a cat"], think=False)
    assert uncond.length == 0 and thinks == [None] and cond.length == prompt


def test_understand_and_chat(tiny_model) -> None:
    image = tiny_model.generate([GenerationRequest("draw a star", "normal", 3)])[0].image
    answers = tiny_model.understand([image, image.resize((40, 24))], ["how many stars ?", "what colour ?"])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert answers == tiny_model.understand([image, image.resize((40, 24))],
                                            ["how many stars ?", "what colour ?"])
    # padding a smaller image's ViT tokens in a batch leaves its features unchanged
    small, big = tiny_model._vit_tensor(image.resize((40, 24))), tiny_model._vit_tensor(image)
    from unisandbox_bagel.images import grid_positions, patchify

    def features(imgs: list[torch.Tensor]) -> torch.Tensor:
        p, side = 8, 8
        toks = [patchify(i, p) for i in imgs]
        n = max(t.shape[0] for t in toks)
        x = torch.zeros(len(imgs), n, toks[0].shape[1])
        pos = torch.zeros(len(imgs), n, dtype=torch.long)
        ok = torch.zeros(len(imgs), n, dtype=torch.bool)
        for j, (t, img) in enumerate(zip(toks, imgs, strict=True)):
            x[j, : len(t)], ok[j, : len(t)] = t, True
            pos[j, : len(t)] = grid_positions(img.shape[1] // p, img.shape[2] // p, side)
        with torch.no_grad():
            return tiny_model.net.vit_model(x, pos, ok)

    alone = features([small])[0]
    batched = features([big, small])[1, : alone.shape[0]]
    assert small.shape[1:] == (40, 64) and torch.allclose(alone, batched, atol=1e-5)
    replies = tiny_model.chat(["what is one plus two ?", "name a fruit"])
    assert len(replies) == 2 and all(len(tiny_model._encode(r)) <= 5 for r in replies)
    with pytest.raises(ValueError):
        tiny_model.understand([image], ["a", "b"])


def test_query_states_logit_lens_and_vocabulary(tiny_model) -> None:
    states = tiny_model.query_states([GenerationRequest("draw a cat", "normal", 1),
                                      GenerationRequest("draw a cat", "think", 1)])
    layers, width = 2, 32
    for qs in states:
        assert qs.hidden.shape == (layers + 1, 1, width) and qs.labels == ("context",)
    assert states[0].think is None and isinstance(states[1].think, str)
    # the last context position is the <|im_end|> closing the prompt: its embedding comes first
    embed = tiny_model.net.language_model.model.embed_tokens.weight[tiny_model.tokens.eos]
    assert torch.allclose(states[0].hidden[0, 0], embed.float())
    probs = tiny_model.logit_lens(states[0].hidden)
    assert probs.shape == (layers + 1, 1, tiny_model.net.llm_config.vocab_size)
    assert torch.allclose(probs.sum(-1), torch.ones(layers + 1, 1), atol=1e-5)
    vocab = tiny_model.vocabulary()
    assert vocab["<|im_end|>"] == tiny_model.tokens.eos and "star" in vocab


def test_training_hooks_touch_only_their_part(tiny_checkpoint: Path, fast) -> None:
    tiny_model = bagel(str(tiny_checkpoint), **fast)  # its own copy: this test changes weights
    net = tiny_model.net
    und = tiny_model.trainable_parameters("understanding")
    gen = tiny_model.trainable_parameters("generation")
    ids_und, ids_gen = {id(p) for p in und}, {id(p) for p in gen}
    assert not ids_und & ids_gen
    frozen = {id(net.latent_pos_embed.pos_embed), id(net.vit_pos_embed.pos_embed)}
    assert not frozen & (ids_und | ids_gen)
    every = {id(p) for p in net.parameters()}
    assert every - ids_und - ids_gen == frozen
    with pytest.raises(CapabilityError):
        tiny_model.trainable_parameters("everything")

    conv = [Conversation("1", (Turn("user", "what is one plus two ?"), Turn("assistant", "three"))),
            Conversation("2", (Turn("user", "draw"), Turn("assistant", "a red star"),
                               Turn("user", "and ?"), Turn("assistant", "a cat")))]
    net.zero_grad(set_to_none=True)
    loss = tiny_model.text_loss(conv)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in gen)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in und)
    with torch.no_grad():  # one step on the understanding part lowers the loss
        for p in und:
            if p.grad is not None:
                p -= 0.5 * p.grad
    assert tiny_model.text_loss(conv).item() < loss.item()
    with pytest.raises(ValueError, match="no assistant tokens"):
        tiny_model.text_loss([Conversation("3", (Turn("user", "hi"),))])

    image = tiny_model.generate([GenerationRequest("draw a star", "normal", 3)])[0].image
    net.zero_grad(set_to_none=True)
    gloss = tiny_model.generation_loss(["draw a star", "draw a cat"], [image, image], seed=4)
    gloss.backward()
    assert torch.isfinite(gloss) and gloss.item() > 0
    assert all(p.grad is not None for p in (net.llm2vae.weight, net.vae2llm.weight,
                                            net.time_embedder.mlp[0].weight))
    assert net.language_model.model.layers[0].mlp_moe_gen.up_proj.weight.grad is not None
    assert torch.equal(gloss.detach(), tiny_model.generation_loss(["draw a star", "draw a cat"],
                                                                  [image, image], seed=4).detach())
    with pytest.raises(CapabilityError, match="condition"):  # no generation_condition to hand back
        tiny_model.generation_loss(["draw a star"], [image], condition=torch.zeros(1, 4))
    with pytest.raises(CapabilityError, match="think_sampling"):  # the plan is always greedy
        tiny_model.generate([GenerationRequest("draw a star", "think", 3, temperature=0.7)])
    net.zero_grad(set_to_none=True)


def test_save_load_round_trip_is_exact(tiny_model, tmp_path: Path, fast) -> None:
    tiny_model.save_pretrained(tmp_path / "saved")
    names = sorted(p.name for p in (tmp_path / "saved").iterdir())
    for required in ("ae.safetensors", "config.json", "ema.safetensors", "llm_config.json",
                     "tokenizer.json", "vit_config.json"):
        assert required in names
    again = bagel(str(tmp_path / "saved"), **fast)
    ours, theirs = tiny_model.net.state_dict(), again.net.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    a, b = tiny_model.vae.state_dict(), again.vae.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.vocabulary() == tiny_model.vocabulary() and again.tokens == tiny_model.tokens
    req = [GenerationRequest("draw two red hearts", "think", 5)]
    first, second = tiny_model.generate(req)[0], again.generate(req)[0]
    assert np.array_equal(pixels(first.image), pixels(second.image)) and first.think == second.think
    assert again.settings == tiny_model.settings
    with pytest.raises(UserError, match=r"model\.safetensors"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "model.safetensors").write_bytes(b"")
        tiny_model.save_pretrained(tmp_path / "other")


def test_device_map_path_gives_the_same_images(tiny_checkpoint: Path, tiny_model, fast) -> None:
    options = {k: v for k, v in fast.items() if k != "device"}
    split = {"language_model.model.embed_tokens": "cpu", "language_model.model.layers.0": "cpu",
             "language_model.model.layers.1": "cpu", "language_model.model.norm": "cpu",
             "language_model.model.norm_moe_gen": "cpu", "language_model.model.rotary_emb": "cpu",
             "language_model.lm_head": "cpu", "vit_model": "cpu", "connector": "cpu",
             "vit_pos_embed": "cpu", "time_embedder": "cpu", "vae2llm": "cpu", "llm2vae": "cpu",
             "latent_pos_embed": "cpu"}
    mapped = bagel(str(tiny_checkpoint), device_map=split, **options)
    req = [GenerationRequest("draw a dog", "normal", 2)]
    assert np.array_equal(pixels(mapped.generate(req)[0].image), pixels(tiny_model.generate(req)[0].image))
    auto = bagel(str(tiny_checkpoint), device_map="auto", **options)
    assert auto.chat(["hello"]) == tiny_model.chat(["hello"])


def test_factory_errors_are_user_errors(tiny_checkpoint: Path, fast) -> None:
    spec = get_registry(reload=True).model("bagel")
    assert spec.distribution == "unisandbox-bagel"
    for bad, message in (({"image_size": 60}, "multiple of 16"), ({"image_size": 256}, "exceeds"),
                         ({"cfg_interval": "late"}, "cfg_interval"), ({"dtype": "int8"}, "dtype"),
                         ({"think_tokens": 1}, "think_tokens"), ({"steps": 1}, "steps"),
                         ({"device": "tpu:7"}, "device"), ({"device": "mps"}, "device must be cpu"),
                         ({"device": "meta"}, "device must be cpu"),
                         ({"image_size": "abc"}, "image_size must be a whole number"),
                         ({"steps": 2.9}, "steps must be a whole number"),
                         ({"timestep_shift": float("inf")}, "timestep_shift must be a number"),
                         ({"cfg_text_scale": float("nan")}, "cfg_text_scale")):
        with pytest.raises(UserError, match=message):
            build(spec, {"path": str(tiny_checkpoint), **fast, **bad})
    default = {k: v for k, v in fast.items() if k != "image_size"}
    assert build(spec, {"path": str(tiny_checkpoint), **default}).image_size == 128  # its largest
    with pytest.raises(UserError, match="unknown argument 'temperature'"):
        build(spec, {"path": str(tiny_checkpoint), "temperature": 0.3})
    with pytest.raises(UserError, match="checkpoint folder not found"):
        build(spec, {"path": str(tiny_checkpoint / "nope"), **fast})


def test_cached_context_equals_one_uncached_pass(tiny_model) -> None:
    """Prefill + image block against the KV cache == one pass over the whole sequence with the
    reference's mask (text causal; the image block sees the text and itself), positions and
    expert routing built by hand here."""
    from unisandbox_bagel.decoder import Route

    net, tokens = tiny_model.net, tiny_model.tokens
    ids = [tokens.bos, *tiny_model._encode("draw three red stars"), tokens.eos]
    rows, cols, pos = net.latent_grid(64, 64)
    n = rows * cols
    x = torch.randn(1, n, net.patch_latent_dim, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.7])
    with torch.no_grad():
        ctx, _, _ = net.prefill_text(net.empty(1), [ids[1:-1]], tokens)
        cached = net.velocity(ctx, x, t, pos, tokens)

        text = net.embed(torch.tensor([ids]))
        block, gen_mask = net.latent_block(x, t, pos, tokens)
        hidden = torch.cat([text, block], dim=1)
        total, k = hidden.shape[1], len(ids)
        mask = torch.zeros(total, total, dtype=torch.bool)
        mask[:k, :k] = torch.ones(k, k, dtype=torch.bool).tril()
        mask[k:, :] = True
        positions = torch.tensor([[*range(k)] + [k] * (n + 2)])
        cos, sin = net.language_model.model.rotary_emb(hidden, positions)
        route = Route.from_mask(torch.cat([torch.zeros(1, k, dtype=torch.bool), gen_mask], dim=1))
        for layer in net.layers:
            hidden, _, _ = layer(hidden, cos, sin, mask[None, None], route.gen, route.und)
        latent = net.language_model.model.norm_moe_gen(hidden[:, k + 1 : k + 1 + n])
        uncached = net.llm2vae(latent).float()
    assert torch.allclose(cached, uncached, atol=1e-5), (cached - uncached).abs().max()


def test_greedy_decoding_with_cache_equals_recomputing(tiny_model) -> None:
    net, tokens = tiny_model.net, tiny_model.tokens
    prompt = tiny_model._encode("what is one plus two ?")
    with torch.no_grad():
        ctx, _, _ = net.prefill_text(net.empty(1), [prompt], tokens)
        cached = net.greedy(ctx, 6, tokens)[0]
        seq = [tokens.bos, *prompt, tokens.eos, tokens.bos]
        recomputed: list[int] = []
        for _ in range(5):
            n = len(seq)
            hidden, _, _ = net.run(net.empty(1), net.embed(torch.tensor([seq])), torch.arange(n)[None],
                                   torch.ones(1, n, dtype=torch.bool), causal=True)
            nxt = int(net.language_model.logits(hidden[:, -1]).argmax(-1))
            if nxt == tokens.eos:
                break
            recomputed.append(nxt)
            seq.append(nxt)
    assert cached == recomputed and len(cached) >= 2
