"""The sandbox model's own tokenizer: whole words where it knows them, letters where it doesn't.

Nothing can be downloaded, so the vocabulary is built from the sandbox corpus. A WordPiece
model whose vocabulary holds every corpus word plus every single character (and its ``##``
continuation) tokenises any text: a character name the model has never seen (knowledge
injection) becomes a few letter pieces instead of ``[UNK]``. Saved and loaded as a
``PreTrainedTokenizerFast`` (tokenizer.json), like any transformers tokenizer.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, EOS = "[PAD]", "[UNK]", "[EOS]"
USER, ASSISTANT = "<user>", "<assistant>"
THINK, END_THINK = "<think>", "</think>"
IMAGE = "<image>"
SPECIAL_TOKENS = (PAD, UNK, EOS, USER, ASSISTANT, THINK, END_THINK, IMAGE)
#: characters every vocabulary holds (so any text tokenises without [UNK])
BASE_CHARS = string.ascii_lowercase + string.digits + string.punctuation + "√×÷±−"

# words, numbers and single symbols become separate pre-tokens; with ``key_tokens`` a quoted
# one-character key ("'K'", "'3'", "'%'": the mapping rules' keys) is one pre-token of its own,
# so each key is one token and the closing quote is not the same token before every rule's
# object (an induction head matching that quote would find every rule)
_SPLIT = r"<[a-z/]+>|\[[A-Z]+\]|[a-z]+|[0-9]+|[^\sa-z0-9]"
_SPLIT_KEYS = r"<[a-z/]+>|\[[A-Z]+\]|'[^'\s]'|[a-z]+|[0-9]+|[^\sa-z0-9]"


def _backend(vocab: dict[str, int], key_tokens: bool = False) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token=UNK, max_input_chars_per_word=64))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    split = Regex(_SPLIT_KEYS if key_tokens else _SPLIT)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(split, behavior="isolated")]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return tok


def pre_tokenize(texts: Iterable[str], key_tokens: bool = False) -> Counter[str]:
    """Count the words of ``texts`` as the tokenizer will split them."""
    tok = _backend({UNK: 0}, key_tokens)
    counts: Counter[str] = Counter()
    for text in texts:
        normal = tok.normalizer.normalize_str(text)
        counts.update(piece for piece, _ in tok.pre_tokenizer.pre_tokenize_str(normal))
    return counts


def build_tokenizer(texts: Iterable[str], min_count: int = 1, exclude: Iterable[str] = (),
                    key_tokens: bool = False) -> PreTrainedTokenizerFast:
    """A tokenizer whose vocabulary is every word of ``texts`` plus single characters.

    Words in ``exclude`` (e.g. character names) are left to letter pieces, so that names the
    model learns later (knowledge injection) are tokenised the same way as those it knew.
    ``key_tokens``: each quoted one-character key ("'K'") is one token (saved in tokenizer.json,
    so a checkpoint keeps the split it was trained with).
    """
    banned = {w.lower() for w in exclude}
    words = [w for w, c in sorted(pre_tokenize(texts, key_tokens).items())
             if c >= min_count and w not in banned]
    vocab: dict[str, int] = {}
    for token in (*SPECIAL_TOKENS, *BASE_CHARS, *(f"##{c}" for c in BASE_CHARS), *words):
        vocab.setdefault(token, len(vocab))
    backend = _backend(vocab, key_tokens)
    for token in SPECIAL_TOKENS:
        backend.add_special_tokens([token])
    return wrap(backend)


def wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=PAD, unk_token=UNK, eos_token=EOS,
        padding_side="left", additional_special_tokens=list(SPECIAL_TOKENS[3:]),
    )
    return tokenizer


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by ``save_pretrained`` (tokenizer.json; nothing downloads)."""
    return PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True,
                                                   padding_side="left")
