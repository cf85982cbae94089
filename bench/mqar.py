"""Multi-query associative recall (MQAR) on the sandbox LM's architecture, as a yardstick.

The mapping tasks need the LM to look a key up in its context by content. This bench asks
whether the sandbox LM (transformers ``Qwen2ForCausalLM`` built from the sandbox config) learns
the textbook version of that skill, with nothing else in the way: single-token keys and values,
``k1 v1 k2 v2 ... | kq vq kq' vq' ...``, every pair asked once in a shuffled order, loss on the
asked values only, fresh random sequences every step (nothing to memorise). It prints the share
of asked values right on 256 fresh sequences every ``--every`` steps, next to two baselines
that bind nothing: a random value of the context (1 / pairs) and a random value not asked yet
(elimination, H(pairs) / pairs: 75 % for 2 pairs, 34 % for 8), which a model learns long before
it binds keys to values. docs/sandbox-model.md has the measured runs.

    .venv/bin/python bench/mqar.py --pairs 2               # learned within ~1,000 steps
    .venv/bin/python bench/mqar.py --pairs 8 --every 250   # the plateau
    .venv/bin/python bench/mqar.py --pairs 8 --shift       # + a previous-token shift on the embeddings
    .venv/bin/python bench/mqar.py --pairs 2 --gap 3       # values 1-4 tokens after their keys
    .venv/bin/python bench/mqar.py --pairs 2 --gap 3 --ask 1   # one key asked, as in a mapping item
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

KEYS, VALUES, FILLERS = 64, 64, 4


def batch(b: int, pairs: int, g: torch.Generator, n_keys: int = KEYS, n_values: int = VALUES,
          vocab: torch.Tensor | None = None, gap: int = 0, asked: int | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (keys 0..n_keys-1, values up to n_keys+n_values-1, then the separator, then
    FILLERS filler tokens) and labels (-100 except at the asked values); ``vocab`` maps those
    indices to a real vocabulary's ids. ``gap``: each context pair takes ``gap + 2`` slots,
    0..gap random fillers between its key and value and the rest after the value, so a value is
    1..gap+1 tokens from its key (as an object is from its key in a mapping rule). ``asked``:
    only that many of the pairs are asked (default all; a mapping item asks one)."""
    if gap and vocab is not None:
        raise ValueError("gap needs filler tokens, which a vocabulary map does not have")
    keys = torch.stack([torch.randperm(n_keys, generator=g)[:pairs] for _ in range(b)])
    values = torch.randint(n_keys, n_keys + n_values, (b, pairs), generator=g)
    order = torch.stack([torch.randperm(pairs, generator=g)[:asked] for _ in range(b)])
    if gap:
        fill = n_keys + n_values + 1 + torch.randint(0, FILLERS, (b, pairs, gap + 2), generator=g)
        before = torch.randint(0, gap + 1, (b, pairs), generator=g)
        slots = torch.arange(gap + 2)
        context = torch.where(slots == 0, keys.unsqueeze(-1), torch.where(
            slots == before.unsqueeze(-1) + 1, values.unsqueeze(-1), fill)).reshape(b, -1)
    else:
        context = torch.stack([keys, values], 2).reshape(b, -1)
    queries = torch.stack([keys.gather(1, order), values.gather(1, order)], 2).reshape(b, -1)
    ids = torch.cat([context, torch.full((b, 1), n_keys + n_values), queries], 1)
    if vocab is not None:
        ids = vocab[ids]
    labels = torch.full_like(ids, -100)
    start = context.shape[1] + 1
    labels[:, start + 1 :: 2] = ids[:, start + 1 :: 2]
    return ids, labels


def train(forward: Callable[..., Any], params: list[nn.Parameter], *, pairs: int, steps: int,
          lr: float, every: int, batch_size: int = 64, seed: int = 0, label: str = "step",
          n_keys: int = KEYS, n_values: int = VALUES, vocab: torch.Tensor | None = None,
          gap: int = 0, asked: int | None = None) -> None:
    """AdamW with a 50-step warm-up on fresh batches; prints the recall of 256 fresh sequences
    every ``every`` steps. ``forward(ids, labels=None)`` returns a transformers causal-LM output."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    g = torch.Generator().manual_seed(seed)  # the batches' seed
    draw = partial(batch, pairs=pairs, g=g, n_keys=n_keys, n_values=n_values, vocab=vocab, gap=gap,
                   asked=asked)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / 50)
        loss = forward(*draw(batch_size)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % every == 0 or step == steps:
            with torch.no_grad():
                ids, labels = draw(256)
                guess = forward(ids).logits[:, :-1].argmax(-1)
                want = labels[:, 1:]
                acc = (guess[want != -100] == want[want != -100]).float().mean().item()
            print(f"{label} {step:6d}  {time.perf_counter() - t0:6.0f} s  loss {loss.item():.3f}  "
                  f"recall {100 * acc:5.1f} %", flush=True)


class PreviousTokenShift(nn.Module):
    """``e_t + w * e_{t-1}`` per channel, starting at w = 1: a value's input holds its key, so one
    attention layer can match a query key against it (the 'smeared key' shortcut)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return embeds + self.weight * nn.functional.pad(embeds, (0, 0, 1, 0))[:, :-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=8, help="key-value pairs per sequence (all asked)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=100, help="evaluate every this many steps")
    ap.add_argument("--batch", type=int, default=64, help="sequences per step")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--hidden", type=int, default=None, help="LM width (default: the sandbox LM's)")
    ap.add_argument("--heads", type=int, default=None, help="attention heads (default: the sandbox LM's)")
    ap.add_argument("--shift", action="store_true", help="add a previous-token shift to the embeddings")
    ap.add_argument("--gap", type=int, default=0, help="0..GAP random filler tokens between each "
                    "context key and its value (as between a mapping rule's key and its object)")
    ap.add_argument("--ask", type=int, default=None, help="ask only this many of the pairs per "
                    "sequence (default all; a mapping item asks one)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.gap < 0:
        ap.error("--gap must be at least 0")
    if args.ask is not None and not 1 <= args.ask <= args.pairs:
        ap.error("--ask must be 1..--pairs")
    if not 1 <= args.pairs <= KEYS:
        ap.error(f"--pairs must be 1..{KEYS}")
    for name in ("steps", "every", "batch"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    torch.set_num_threads(args.threads)

    from transformers import AutoConfig, AutoModelForCausalLM
    from unisandbox_query.modeling_query_umm import QueryUMMConfig

    lm = dict(QueryUMMConfig().lm, vocab_size=KEYS + VALUES + 1 + FILLERS)
    if args.hidden:
        lm.update(hidden_size=args.hidden, intermediate_size=4 * args.hidden)
    if args.heads:
        lm.update(num_attention_heads=args.heads, num_key_value_heads=args.heads)
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**lm))
    shift = PreviousTokenShift(lm["hidden_size"]) if args.shift else None
    params = [*model.parameters(), *(shift.parameters() if shift else ())]
    asked = args.ask or args.pairs  # answering with a value not asked yet, over the asked ones:
    elimination = sum(1 / (args.pairs - i) for i in range(asked)) / asked

    def forward(ids: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        embeds = model.get_input_embeddings()(ids)
        return model(inputs_embeds=shift(embeds) if shift else embeds, labels=labels)

    print(f"MQAR: {args.pairs} pairs, {args.batch} sequences/step, lr {args.lr}, LM "
          f"{lm['num_hidden_layers']} layers x {lm['hidden_size']}, {lm['num_attention_heads']} heads"
          f"{', previous-token shift' if shift else ''}"
          f"{f', 0-{args.gap} fillers between key and value' if args.gap else ''}"
          f"{f', {asked} of them asked' if args.ask else ''}; without binding: a random value "
          f"{100 / args.pairs:.1f} %, a value not asked yet {100 * elimination:.1f} %", flush=True)
    train(forward, params, pairs=args.pairs, steps=args.steps, lr=args.lr, every=args.every,
          batch_size=args.batch, seed=args.seed + 1, gap=args.gap, asked=args.ask)
    return 0


if __name__ == "__main__":
    sys.exit(main())
