"""A tiny random Janus checkpoint folder, written with transformers' own ``save_pretrained``.

It has the real file layout (``config.json``, ``model.safetensors``, ``generation_config.json``,
tokenizer and processor files with a chat template) at toy widths: a 2-layer Llama, a 1-layer
SigLIP-style encoder on 32 px images (16 understanding tokens), and a 4-level VQ decoder
that turns a 4 x 4 grid of codes into a 32 px image. The tokenizer is byte-level (every string
round-trips, no vocabulary to download) plus Janus' special tokens. Random weights: it
exercises every code path, it draws nothing meaningful.

    python -m unisandbox_janus.tiny DIR     # then: unisandbox eval --model janus --model-arg path=DIR ...
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BOS, EOS, PAD = "<|begin_of_sentence|>", "<|end_of_sentence|>", "<|pad|>"
IMAGE, BOI, EOI = "<image_placeholder>", "<begin_of_image>", "<end_of_image>"
USER, ASSISTANT = "<|User|>", "<|Assistant|>"

#: DeepSeek's conversation layout ("<|User|>: ...\n\n<|Assistant|>: ..."), written for this
#: checkpoint; released checkpoints ship their own template and the plugin uses whichever the
#: folder holds.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}" + USER + ": {% else %}" + ASSISTANT + ": {% endif %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}" + IMAGE + "{{ '\\n' }}{% else %}{{ part['text'] | trim }}{% endif %}"
    "{% endfor %}"
    "{% if message['role'] == 'user' %}{{ '\\n\\n' }}{% else %}" + EOS + "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + ":{% endif %}"
)


def build_tokenizer() -> Any:
    """A byte-level BPE tokenizer with no merges (one token per byte) and Janus' specials."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = [BOS, EOS, PAD, IMAGE, BOI, EOI, USER, ASSISTANT]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="left",
        add_bos_token=True, extra_special_tokens={"image_token": IMAGE, "boi_token": BOI, "eoi_token": EOI})


def tiny_config(tokenizer: Any, hidden: int = 64, image_size: int = 32, patch: int = 8,
                codebook: int = 64) -> Any:
    """A JanusConfig at toy widths; image side ``image_size`` for both encoder and VQ decoder."""
    from transformers import JanusConfig

    grid = image_size // patch
    levels = (image_size // grid).bit_length()  # the decoder doubles the grid (levels - 1) times
    text = {"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": hidden,
            "intermediate_size": 2 * hidden, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 1024,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id}
    vision = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "mlp_ratio": 2,
              "image_size": image_size, "patch_size": patch, "num_image_tokens": grid * grid,
              "projection_dim": hidden, "depth": 2}
    vq = {"embed_dim": 8, "num_embeddings": codebook, "latent_channels": 32, "base_channels": 32,
          "channel_multiplier": [1] * levels, "num_res_blocks": 1, "projection_dim": hidden,
          "image_token_embed_dim": hidden}  # GroupNorm(32): VQ channels are multiples of 32
    return JanusConfig(text_config=text, vision_config=vision, vq_config=vq,
                       image_token_id=tokenizer.convert_tokens_to_ids(IMAGE))


def write_tiny_checkpoint(folder: str | Path, *, seed: int = 0, **sizes: Any) -> Path:
    """Create a random tiny Janus in ``folder`` and return the folder."""
    import torch
    from transformers import JanusForConditionalGeneration, JanusProcessor
    from transformers.models.janus.image_processing_pil_janus import JanusImageProcessorPil

    folder = Path(folder)
    tokenizer = build_tokenizer()
    config = tiny_config(tokenizer, **sizes)
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(config).eval()
    with torch.no_grad():  # transformers' 0.02 init leaves a toy model deaf to its prompt: every
        for module in model.modules():  # prompt would draw the same image for a seed
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, module.weight.shape[1] ** -0.5)
            elif isinstance(module, torch.nn.Embedding):
                module.weight.normal_(0.0, 1.0)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    gen.guidance_scale, gen.temperature = 5.0, 1.0  # Janus' published sampling defaults
    gen.generation_kwargs = {"boi_token_id": tokenizer.convert_tokens_to_ids(BOI)}
    model.save_pretrained(folder)
    side = config.vision_config.image_size
    images = JanusImageProcessorPil(size={"height": side, "width": side}, image_mean=[0.5] * 3,
                                    image_std=[0.5] * 3)
    processor = JanusProcessor(images, tokenizer, chat_template=CHAT_TEMPLATE,
                               num_image_tokens=config.vision_config.num_image_tokens)
    processor.save_pretrained(folder)
    return folder


if __name__ == "__main__":  # pragma: no cover - a convenience for trying the plugin by hand
    if len(sys.argv) != 2:
        sys.exit("usage: python -m unisandbox_janus.tiny DIR")
    print(write_tiny_checkpoint(sys.argv[1]))
