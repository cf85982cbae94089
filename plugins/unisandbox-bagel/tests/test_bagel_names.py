"""The parameter names and shapes must be the release's, so real ema.safetensors / ae.safetensors load.

The expected names below were written from the public ByteDance-Seed/Bagel module structure
(not generated from this plugin's code), group by group:

* ``language_model.*``  modeling/bagel/qwen2_navit.py: Qwen2ForCausalLM (``model``, ``lm_head``) ->
  Qwen2Model (``embed_tokens``, ``layers``, ``norm``, ``norm_moe_gen`` because the layer module is
  Qwen2MoTDecoderLayer; the rotary table is a non-persistent buffer) -> Qwen2MoTDecoderLayer
  (``self_attn`` = PackedAttentionMoT, ``mlp``/``mlp_moe_gen`` = Qwen2MLP, four RMS norms) ->
  PackedAttentionMoT (Qwen2Attention's q/k/v with bias and o without, ``q_norm``/``k_norm`` because
  app.py forces qk_norm, and the ``*_moe_gen`` copies).
* ``vit_model.vision_model.*``  modeling/bagel/siglip_navit.py: SiglipVisionModel -> SiglipVisionTransformer
  (``embeddings``, ``encoder.layers``, ``post_layernorm``; rope off so ``position_embedding`` exists, and
  ``convert_conv2d_to_linear`` makes ``patch_embedding`` a Linear over 3*p*p inputs).
* top level  modeling/bagel/bagel.py: ``time_embedder`` (TimestepEmbedder: mlp.0 / mlp.2 from 256
  frequencies), ``vae2llm``/``llm2vae``, ``latent_pos_embed``/``vit_pos_embed`` (PositionEmbedding,
  ``pos_embed`` an nn.Parameter with requires_grad=False, so it is in the weights), ``connector``
  (MLPconnector fc1/fc2).
* ``ae.safetensors``  modeling/autoencoder.py (FLUX): Encoder/Decoder with ``down.i.block.j``,
  ``down.i.downsample.conv``, ``mid.block_1/attn_1/block_2``, ``up.i.block.j`` (num_res_blocks + 1),
  ``up.i.upsample.conv``, ``norm_out``, ``conv_in``/``conv_out``; attention q/k/v/proj_out are 1x1 convs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from unisandbox.errors import UserError
from unisandbox_bagel import checkpoint, layout
from unisandbox_bagel.autoencoder import FluxAutoencoder
from unisandbox_bagel.network import BagelNetwork

ATTN = ["q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias",
        "o_proj.weight", "q_norm.weight", "k_norm.weight"]
LLM_LAYER = ([f"self_attn.{n}" for n in ATTN]
             + [f"self_attn.{n.replace('.', '_moe_gen.', 1)}" for n in ATTN]
             + [f"{mlp}.{p}_proj.weight" for mlp in ("mlp", "mlp_moe_gen") for p in ("gate", "up", "down")]
             + [f"{n}.weight" for n in ("input_layernorm", "input_layernorm_moe_gen",
                                        "post_attention_layernorm", "post_attention_layernorm_moe_gen")])
VIT_LAYER = [f"{m}.{wb}" for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                   "self_attn.out_proj", "layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2")
             for wb in ("weight", "bias")]


def release_shapes(s: layout.Settings) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the release's state dict for these settings (its constructors' arithmetic)."""
    llm, vit = s.llm, s.vit
    w, inter, heads, kv = llm["hidden_size"], llm["intermediate_size"], llm["num_attention_heads"], \
        llm["num_key_value_heads"]
    hd = w // heads
    vw, vi, patch = vit["hidden_size"], vit["intermediate_size"], vit["patch_size"]
    latent_dim = s.latent_patch_size ** 2 * s.vae["z_channels"]
    layer_shapes = {
        "q_proj.weight": (heads * hd, w), "q_proj.bias": (heads * hd,), "k_proj.weight": (kv * hd, w),
        "k_proj.bias": (kv * hd,), "v_proj.weight": (kv * hd, w), "v_proj.bias": (kv * hd,),
        "o_proj.weight": (w, heads * hd), "q_norm.weight": (hd,), "k_norm.weight": (hd,),
        "gate_proj.weight": (inter, w), "up_proj.weight": (inter, w), "down_proj.weight": (w, inter),
        "layernorm.weight": (w,),
    }
    out: dict[str, tuple[int, ...]] = {
        "language_model.model.embed_tokens.weight": (llm["vocab_size"], w),
        "language_model.model.norm.weight": (w,), "language_model.model.norm_moe_gen.weight": (w,),
        "language_model.lm_head.weight": (llm["vocab_size"], w),
        "time_embedder.mlp.0.weight": (w, 256), "time_embedder.mlp.0.bias": (w,),
        "time_embedder.mlp.2.weight": (w, w), "time_embedder.mlp.2.bias": (w,),
        "vae2llm.weight": (w, latent_dim), "vae2llm.bias": (w,),
        "llm2vae.weight": (latent_dim, w), "llm2vae.bias": (latent_dim,),
        "latent_pos_embed.pos_embed": (s.max_latent_size ** 2, w),
        "vit_pos_embed.pos_embed": (s.vit_max_num_patch_per_side ** 2, w),
        "connector.fc1.weight": (w, vw), "connector.fc1.bias": (w,),
        "connector.fc2.weight": (w, w), "connector.fc2.bias": (w,),
        "vit_model.vision_model.embeddings.patch_embedding.weight": (vw, 3 * patch * patch),
        "vit_model.vision_model.embeddings.patch_embedding.bias": (vw,),
        "vit_model.vision_model.embeddings.position_embedding.weight": ((vit["image_size"] // patch) ** 2, vw),
        "vit_model.vision_model.post_layernorm.weight": (vw,),
        "vit_model.vision_model.post_layernorm.bias": (vw,),
    }
    for i in range(llm["num_hidden_layers"]):
        for name in LLM_LAYER:
            key = name.split(".", 1)[1].replace("_moe_gen", "")
            key = "layernorm.weight" if "layernorm" in name else key
            out[f"language_model.model.layers.{i}.{name}"] = layer_shapes[key]
    vit_layer = {"self_attn": (vw, vw), "layer_norm": (vw,), "mlp.fc1": (vi, vw), "mlp.fc2": (vw, vi)}
    for i in range(vit["num_hidden_layers"]):
        for name in VIT_LAYER:
            group = next(g for g in vit_layer if name.startswith(g))
            shape = vit_layer[group]
            out[f"vit_model.vision_model.encoder.layers.{i}.{name}"] = shape if name.endswith("weight") else shape[:1]
    return out


def release_ae_names(ae: dict) -> set[str]:
    levels, blocks = len(ae["ch_mult"]), ae["num_res_blocks"]
    res = ["norm1", "conv1", "norm2", "conv2"]
    names = [f"{side}.{n}" for side in ("encoder", "decoder") for n in ("conv_in", "conv_out", "norm_out")]
    for side in ("encoder", "decoder"):
        names += [f"{side}.mid.{b}.{r}" for b in ("block_1", "block_2") for r in res]
        names += [f"{side}.mid.attn_1.{p}" for p in ("norm", "q", "k", "v", "proj_out")]
    ch = [ae["ch"] * m for m in ae["ch_mult"]]
    for i in range(levels):
        cin = ae["ch"] if i == 0 else ch[i - 1]
        for j in range(blocks):
            names += [f"encoder.down.{i}.block.{j}.{r}" for r in res]
            if j == 0 and cin != ch[i]:
                names.append(f"encoder.down.{i}.block.{j}.nin_shortcut")
        if i != levels - 1:
            names.append(f"encoder.down.{i}.downsample.conv")
        for j in range(blocks + 1):
            names += [f"decoder.up.{i}.block.{j}.{r}" for r in res]
        if i != 0:
            names.append(f"decoder.up.{i}.upsample.conv")
    return {f"{n}.{wb}" for n in names for wb in ("weight", "bias")}


def test_network_names_and_shapes_are_the_releases(tiny_checkpoint: Path) -> None:
    settings = layout.read_settings(tiny_checkpoint, tiny_checkpoint / "ema.safetensors")
    ours = {k: tuple(v.shape) for k, v in BagelNetwork(settings).state_dict().items()}
    expected = release_shapes(settings)
    assert sorted(set(ours) - set(expected)) == [] and sorted(set(expected) - set(ours)) == []
    assert ours == expected
    assert settings.llm["num_hidden_layers"] == 2 and settings.vit["num_hidden_layers"] == 2


def test_autoencoder_names_are_the_flux_layout(tiny_checkpoint: Path) -> None:
    ae = layout.read_settings(tiny_checkpoint).vae
    state = FluxAutoencoder(ae).release_state()
    assert set(state) == release_ae_names(ae)
    assert state["decoder.mid.attn_1.q.weight"].shape == (ae["ch"] * 1, ae["ch"] * 1, 1, 1)
    assert set(load_file(str(tiny_checkpoint / "ae.safetensors"))) == release_ae_names(ae)


def test_the_full_size_config_has_the_released_parameter_count() -> None:
    """BAGEL-7B-MoT: Qwen2.5-7B widths, SigLIP so400m (27 layers in vit_config, 26 used)."""
    from accelerate import init_empty_weights

    llm = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
           "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768}
    vit = {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 26,
           "num_attention_heads": 16, "patch_size": 14, "image_size": 980}
    settings = layout.Settings(llm=llm, vit=vit)
    with init_empty_weights():
        net = BagelNetwork(settings)
    state = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert state == release_shapes(settings)
    total = sum(v.numel() for v in net.state_dict().values())
    assert 14.0e9 < total < 14.8e9  # "14B total parameters"
    assert state["latent_pos_embed.pos_embed"] == (64 * 64, 3584)
    assert state["vit_model.vision_model.embeddings.patch_embedding.weight"] == (1152, 588)


def test_release_style_weights_load_without_missing_or_unexpected_keys(tiny_checkpoint: Path,
                                                                       tmp_path: Path) -> None:
    """Weights built from the expected names alone (not from our module) load, values intact."""
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    settings = layout.read_settings(folder, folder / "ema.safetensors")
    gen = torch.Generator().manual_seed(5)
    state = {k: torch.randn(shape, generator=gen).to(torch.bfloat16)
             for k, shape in release_shapes(settings).items()}
    save_file(state, str(folder / "ema.safetensors"))
    loaded = checkpoint.load(folder, dtype="bfloat16", device="cpu")
    ours = loaded.net.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in state.items())


def test_drifted_names_are_refused_with_the_names(tiny_checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    state = load_file(str(folder / "ema.safetensors"))
    state["vae2llm.weight_renamed"] = state.pop("vae2llm.weight")
    save_file(state, str(folder / "ema.safetensors"))
    with pytest.raises(UserError, match=r"missing 1 \(vae2llm.weight\); unexpected 1 \(vae2llm.weight_renamed\)"):
        checkpoint.load(folder, dtype="float32", device="cpu")


def test_wrong_shapes_and_missing_files_are_clear_errors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    state = load_file(str(folder / "ema.safetensors"))
    state["llm2vae.bias"] = torch.zeros(3)
    save_file(state, str(folder / "ema.safetensors"))
    with pytest.raises(UserError, match=r"llm2vae.bias has shape \(3,\)"):
        checkpoint.load(folder, dtype="float32", device="cpu")
    (folder / "ae.safetensors").unlink()
    with pytest.raises(UserError, match=r"missing ae\.safetensors"):
        checkpoint.load(folder, dtype="float32", device="cpu")
    (folder / "llm_config.json").write_text("{\n  \"hidden_size\": \"wide\"\n}")
    with pytest.raises(UserError, match=r"llm_config.json: field 'hidden_size'"):
        checkpoint.load(folder, dtype="float32", device="cpu")
    with pytest.raises(UserError, match=r"no model\.safetensors or ema\.safetensors"):
        checkpoint.load(tmp_path, dtype="float32", device="cpu")


def copied(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A copy of the tiny checkpoint to damage."""
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    return folder


def refused(folder: Path, pattern: str) -> None:
    """Loading ``folder`` is a user error matching ``pattern``."""
    with pytest.raises(UserError, match=pattern):
        checkpoint.load(folder, dtype="float32", device="cpu")


@pytest.mark.parametrize("name", ["ema.safetensors", "ae.safetensors"])
def test_an_interrupted_download_is_one_line_saying_so(tiny_checkpoint: Path, tmp_path: Path,
                                                        name: str) -> None:
    folder = copied(tiny_checkpoint, tmp_path)
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[:-100])
    refused(folder, rf"{name}: incomplete \({len(data) - 100:,} bytes")


def test_config_fields_and_tokenizer_files_are_checked_by_name(tiny_checkpoint: Path,
                                                                tmp_path: Path) -> None:
    import json

    folder = copied(tiny_checkpoint, tmp_path)
    top = json.loads((folder / "config.json").read_text())
    for key, value, needle in (("latent_patch_size", "abc", "expected a positive integer"),
                               ("max_latent_size", None, "expected a positive integer"),
                               ("timestep_shift", "x", "expected a number"),
                               ("connector_act", "bogus", "unknown activation 'bogus'")):
        (folder / "config.json").write_text(json.dumps({**top, key: value}))
        refused(folder, rf"config.json: field '{key}': {needle}")
    (folder / "config.json").write_text(json.dumps(top))
    llm = json.loads((folder / "llm_config.json").read_text())
    (folder / "llm_config.json").write_text(json.dumps({**llm, "vocab_size": 8}))
    refused(folder, r"the tokenizer has \d+ tokens but llm_config.json field 'vocab_size' is 8")
    (folder / "llm_config.json").write_text(json.dumps(llm))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink(missing_ok=True)
    refused(folder, r"missing tokenizer\.json")


def test_unsupported_weight_formats_and_partial_weights_say_what_to_do(tiny_checkpoint: Path,
                                                                       tmp_path: Path) -> None:
    folder = copied(tiny_checkpoint, tmp_path)
    (folder / "ema.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    (folder / "model.safetensors.index.json").write_text("{}")
    refused(folder, r"model.safetensors.index.json is not read")
    state = load_file(str(folder / "model-00001-of-00001.safetensors"))
    save_file({k: v for k, v in state.items() if "moe_gen" in k}, str(folder / "model.safetensors"))
    refused(folder, r"a partial fine-tuned checkpoint\?.*complete-checkpoint")


def test_a_nested_autoencoder_field_of_the_wrong_type_is_named(tiny_checkpoint: Path,
                                                               tmp_path: Path) -> None:
    import json

    folder = copied(tiny_checkpoint, tmp_path)
    top = json.loads((folder / "config.json").read_text())
    top["vae_config"] = {**top.get("vae_config", {}), "ch_mult": 3}
    (folder / "config.json").write_text(json.dumps(top))
    refused(folder, r"config.json: field 'vae_config.ch_mult': expected list")
    (folder / "config.json").write_text(json.dumps({**top, "vae_config": {}}))
    (folder / "tokenizer.json").unlink()  # tokenizer_config.json alone is not a tokenizer
    refused(folder, r"missing tokenizer\.json")
