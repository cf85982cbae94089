"""A tiny random BAGEL checkpoint folder in the release layout, for tests, benchmarks and demos.

Same module structure and file layout as the real model at toy widths, with a small word-level
tokenizer that carries BAGEL's special tokens. The weights are random: it exercises every code
path, it does not draw anything meaningful.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout

SPECIALS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
            "<|vision_end|>", "<think>", "</think>"]
WORDS = ["a", "an", "the", "of", "and", "or", "to", "in", "on", "with", "is", "are", "be", "draw", "generate", "show", "produce", "create", "make", "image", "picture", "number", "many", "as", "same", "quantity", "result", "what", "which", "how", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero", "red", "green", "blue", "yellow", "black", "white", "star", "circle", "square", "triangle", "heart", "apple", "apples", "flower", "flowers", "cat", "cats", "dog", "dogs", "person", "plus", "minus", "times", "divided", "by", "equal", "equals", "answer", "question", "think", "plan", "first", "then", "here", "you", "should", "planning", "process", "mind", "reasoning", "enclosed", "within", "tags", "i", "e", "user", "provide", "generate", "calculate"]
PUNCTUATION = list(".,:;?!'\"()[]{}-+*/=%^<>|#")


@dataclass
class TinySizes:
    """Widths of the tiny network (defaults: about 0.3 M parameters; images drawn up to 128 px, read up to 64 px)."""

    hidden: int = 32
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 64
    vit_hidden: int = 32
    vit_layers: int = 2
    vit_heads: int = 2
    vit_intermediate: int = 64
    vit_patch: int = 8
    vit_side: int = 8  # ViT position table side: images up to vit_patch * vit_side pixels
    ae_ch: int = 32
    ae_res_blocks: int = 1
    max_latent_size: int = 8  # latent grid side: images up to 16 * max_latent_size pixels
    extra: dict[str, Any] = field(default_factory=dict)


def build_tokenizer(words: Iterable[str] = ()) -> Any:
    """A word-level fast tokenizer with BAGEL's special tokens (no download)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for token in [*SPECIALS, *WORDS, *PUNCTUATION, *[str(d) for d in range(10)], *words]:
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>",
                                   eos_token="<|im_end|>", bos_token=None)


def tiny_settings(vocab_size: int, sizes: TinySizes | None = None) -> layout.Settings:
    s = sizes or TinySizes()
    llm = {"model_type": "qwen2", "hidden_size": s.hidden, "intermediate_size": s.intermediate,
           "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
           "num_key_value_heads": s.kv_heads, "vocab_size": vocab_size, "hidden_act": "silu",
           "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
           "rope_scaling": None, "tie_word_embeddings": False, "use_sliding_window": False,
           **s.extra}
    vit = {"model_type": "siglip_vision_model", "hidden_size": s.vit_hidden,
           "intermediate_size": s.vit_intermediate, "num_hidden_layers": s.vit_layers,
           "num_attention_heads": s.vit_heads, "num_channels": 3, "patch_size": s.vit_patch,
           "image_size": s.vit_patch * s.vit_side, "hidden_act": "gelu_pytorch_tanh",
           "layer_norm_eps": 1e-6, "attention_dropout": 0.0}
    vae = dict(layout.FLUX_AE, ch=s.ae_ch, ch_mult=[1, 1, 1, 1], num_res_blocks=s.ae_res_blocks)
    return layout.Settings(llm=llm, vit=vit, vae=vae, latent_patch_size=2,
                           max_latent_size=s.max_latent_size, vit_max_num_patch_per_side=s.vit_side)


def write_tiny_checkpoint(folder: str | Path, *, seed: int = 0, sizes: TinySizes | None = None,
                          words: Iterable[str] = ()) -> Path:
    """Create a random tiny BAGEL in ``folder`` (release layout) and return the folder."""
    import torch

    from . import checkpoint
    from .autoencoder import FluxAutoencoder
    from .network import BagelNetwork

    tokenizer = build_tokenizer(words)
    vocab_size = ((len(tokenizer) + 63) // 64) * 64
    settings = tiny_settings(vocab_size, sizes)
    torch.manual_seed(seed)
    net = BagelNetwork(settings)
    with torch.no_grad():  # random but well-scaled: unit-variance embeddings, small heads
        net.language_model.model.embed_tokens.weight.normal_(0.0, 1.0)
        net.llm2vae.weight.mul_(0.5)
    vae = FluxAutoencoder(settings.vae)
    checkpoint.save(folder, settings, net, vae, tokenizer)
    return Path(folder)
