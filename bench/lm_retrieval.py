"""Can the sandbox LM learn in-context retrieval (the mapping tasks' key -> value binding)?

Trains the sandbox model's understanding side from scratch on language only — a weighted mix
of the sandbox corpus's categories plus, optionally, rule-recall drills ("What do 'Q', '3' and
'H' stand for?", every rule of a TRAIN rule set answered in the order asked) and bare lookup
drills ("'K' green stars . '3' red rings . 'K'" -> "green stars") — and prints, every
``--every`` steps, the share of recalled rules right on TEST rule sets and U on the math and
mapping test questions (``--n-test`` items per level, default 30; mapping per question, where picking one of the two
chains scores about half, and per pair, as the engine counts it). docs/sandbox-model.md has the measured runs.

    .venv/bin/python bench/lm_retrieval.py --steps 2000                       # the default mix
    .venv/bin/python bench/lm_retrieval.py --steps 10000 --every 2000 --n-train 3000 --heads 8 \\
        --weights '{"facts": 1, "mapping": 3, "think": 1, "recall": 6}'
    .venv/bin/python bench/lm_retrieval.py --steps 2000 --every 1000 --warmup copy:400 \\
        --weights '{"ask": 1, "facts": 3, "math": 1.5, "mapping": 3, "think": 3, "knowledge": 1.5, "copy": 1}'
    .venv/bin/python bench/lm_retrieval.py --steps 1200 --every 200 --weights '{"lookup": 1}'
    .venv/bin/python bench/lm_retrieval.py --steps 2000 --every 1000 --math-format rewrite
    .venv/bin/python bench/lm_retrieval.py --steps 4000 --every 1000 --math-format direct --lr 1e-3 \
        --n-train 5000 --task-scale '{"math-1": 0.6, "math-2": 2, "math-3": 6}' --weights '{"math": 1}'
    .venv/bin/python bench/lm_retrieval.py --steps 2000 --every 1000 --mqar-warmup 2500
    .venv/bin/python bench/lm_retrieval.py --steps 2000 --every 1000 --mapping-format scan --show 6
    .venv/bin/python bench/lm_retrieval.py --steps 2000 --every 1000 --layers 8   # or --hidden 256 --heads 8
    .venv/bin/python bench/lm_retrieval.py --steps 2000 --every 500 --lookup-entries 2-2 --lr 5e-4 \\
        --weights '{"lookup-echo": 1}' --lookup-style bare        # dense lookups: quoted vs bare keys
    .venv/bin/python bench/lm_retrieval.py --steps 3000 --every 500 --lr 5e-4 --lookup-style bare \\
        --warmup lookup-echo-2:500,lookup-echo-3:500,lookup-echo-4:500 --weights '{"lookup-echo": 1}'
    .venv/bin/python bench/lm_retrieval.py --steps 3000 --every 500 --lr 5e-4 --bare-keys --lookup-style bare \\
        --recall-sets 10000 --warmup lookup-echo-2:400,lookup-echo-3:400,lookup-echo-4:400 \\
        --weights '{"recall": 1, "lookup-echo": 0.5}'             # the binding carried over to the rules
    .venv/bin/python bench/lm_retrieval.py --key-tokens --seed 1 --steps 5000 --every 1000 --lr 5e-4 --mix-lr 2e-3 \
        --recall-sets 10000 --warmup lookup-echo-2:500,lookup-echo-3:500,lookup-echo-4:500,lookup-echo:500 \
        --weights '{"ask": 1, "facts": 3, "math": 1.5, "mapping": 3, "think": 3, "knowledge": 1.5, "recall": 3,
        "lookup-echo": 1.5}'                                      # the recipe's language phase (stop 17)
    # the same with "lookup-chain": 1.5 added to --weights: chained, key-to-key lookups (stop 31);
    # "lookup-chain": 3 with --steps 10000 --every 2000 (stop 32)

The lookup drills here are research variants (styles); the recipe's own are
``SandboxCorpus.lookup_drills``. Recall drills, here and in the recipe, are ``corpus.recall_drill``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import torch

TASKS = ("math-1", "math-2", "math-3", "mapping-1", "mapping-2", "mapping-3")


def recall_drills(samples: list[Any], seed: str) -> list[Any]:
    """Two drills per distinct rule set: its rules, then every key asked for in a shuffled order."""
    from unisandbox.tasks import mapping as M
    from unisandbox_query.sandbox.corpus import recall_drill

    rng, seen, out = random.Random(seed), set(), []
    for s in samples:
        if s.meta["identity"] in seen:
            continue
        seen.add(s.meta["identity"])
        rules = list(M.parse_rules(s.prompt).rules)
        out += [recall_drill(s.question, rules, rng) for _ in range(2)]
    return out


def lookup_drills(n: int, seed: str, dense: bool = False, echo: bool = False,
                  entries: tuple[int, int] = (2, 6), style: str = "quoted") -> list[Any]:
    """Bare associative recall on fresh random lists: "'K' green stars . '3' red rings . 'K'" ->
    "green stars" (``entries``: 2-6; keys and objects drawn anew, so nothing can be memorised).
    ``dense``: every key asked, in a shuffled order, as the recall drills ask a rule set ("...
    What do '3' and 'K' stand for?" -> "'3' stands for red rings. 'K' stands for green stars.").
    ``echo``: dense, each answer entry worded exactly as listed ("'3' red rings . 'K' green stars
    ."), so the value follows its key at the same distance in the answer as in the list.
    ``style``: "quoted" keys and two-word objects (as in the rules), "bare" keys without
    quotes, "one-word" objects (the kind alone), "bare-one-word" both, or "bare-verbs" (bare
    keys, a random verb of one or two words between key and object, as in the rules), to tell
    which part of the rules' format stops the binding."""
    import string

    from unisandbox.world import get_world
    from unisandbox_query.sandbox.corpus import TextExample

    objects = sorted({o.name(2) for o in get_world("glyph").objects})
    if style.endswith("one-word"):
        objects = sorted({o.split()[-1] for o in objects})
    quote = "" if style.startswith("bare") else "'"
    verbs = ("means", "represents", "denotes", "signifies", "stands for", "refers to")
    keys = [*string.ascii_uppercase, *string.digits, *"*$#%^&+<>=~"]
    rng, out = random.Random(seed), []
    for _ in range(n):
        chosen = rng.sample(keys, rng.randint(*entries))
        values = [rng.choice(objects) for _ in chosen]
        if style == "bare-verbs":  # a verb between key and object, as in the rules
            values = [f"{rng.choice(verbs)} {v}" for v in values]
        listing = " ".join(f"{quote}{k}{quote} {v} ." for k, v in zip(chosen, values, strict=True))
        if dense or echo:
            order = rng.sample(range(len(chosen)), len(chosen))
            keys_asked = [f"{quote}{chosen[i]}{quote}" for i in order]
            entry = "{q}{}{q} {} ." if echo else "{q}{}{q} stands for {}."
            out.append(TextExample("lookup-echo" if echo else "lookup-dense",
                                   f"{listing} What do {', '.join(keys_asked[:-1])} and {keys_asked[-1]} stand for?",
                                   " ".join(entry.format(chosen[i], values[i], q=quote) for i in order)))
            continue
        ask = rng.randrange(len(chosen))
        out.append(TextExample("lookup", f"{listing} {quote}{chosen[ask]}{quote}", values[ask]))
    return out


def chain_drills(n: int, seed: str, hops: tuple[int, int] = (1, 3), quote: str = "'") -> list[Any]:
    """Chained lookups in the echo format, the mapping items' structure without their words: two
    chains of the same length (1-3 hops, as mapping levels 1-3), every entry of both in one
    shuffled list, a key's value either another key of its chain or an object ("'J' '*' . 'F' '2'
    . '*' yellow hearts . '2' blue squares . What do 'F' and 'J' stand for?" -> "'F' '2' . '2'
    blue squares . 'J' '*' . '*' yellow hearts ."). A key that is some entry's value stands
    twice in the list, so the lookup must find it where it is the key, as a mapping item's
    second hop must; the object-valued lookups never ask that."""
    import string

    from unisandbox.world import get_world
    from unisandbox_query.sandbox.corpus import TextExample

    objects = sorted({o.name(2) for o in get_world("glyph").objects})
    keys = [*string.ascii_uppercase, *string.digits, *"*$#%^&+<>=~"]
    rng, out = random.Random(seed), []
    for _ in range(n):
        h = rng.randint(*hops)
        chosen = rng.sample(keys, 2 * h)
        chains = [chosen[:h], chosen[h:]]
        entries = {c[-1]: rng.choice(objects) for c in chains}  # the last key names an object
        entries |= {c[i]: f"{quote}{c[i + 1]}{quote}" for c in chains for i in range(h - 1)}
        listing = " ".join(f"{quote}{k}{quote} {entries[k]} ." for k in rng.sample(chosen, len(chosen)))
        asked = rng.sample(chains, 2)
        answer = " ".join(f"{quote}{k}{quote} {entries[k]} ." for c in asked for k in c)
        out.append(TextExample("lookup-chain", f"{listing} What do {quote}{asked[0][0]}{quote} and "
                                               f"{quote}{asked[1][0]}{quote} stand for?", answer))
    return out


def bare_keys(text: str) -> str:
    """Drop the quotes around rule keys ("'C' means ..." -> "C means ..."): what the LM would
    see if the tokenizer made a quoted key one token (--bare-keys)."""
    import re

    return re.sub(r"'([^'\s]{1,3})'", r"\1", text)


def entries_right(replies: list[str], examples: list[Any]) -> tuple[int, int]:
    """(right, asked): the entries ("'K' stands for green stars.") answered right in the order
    asked, and how many were asked. (Until stop 16 the empty piece after a reply's final "."
    counted as one more right entry, one per reply: docs/sandbox-model.md.)"""
    right = total = 0
    for reply, example in zip(replies, examples, strict=True):
        want = [w for w in example.answer.lower().replace(" ", "").split(".") if w]
        right += sum(a == b for a, b in zip(reply.lower().replace(" ", "").split("."), want, strict=False))
        total += len(want)
    return right, total


def rewrite_chain(sample: Any) -> str:
    """A math item worked as successive rewrites of its expression, one operation at a time:
    "7 - 18 % 4 = 7 - 2 = 5." (every operand is copied from the line just before). A step whose
    value is not a whole number >= 0 ends the chain at the final value ("... rounded down")."""
    import attrs
    from unisandbox.tasks import expr as E

    def reduce_first(node: Any) -> Any:  # the first operation in evaluation order -> its value
        if isinstance(node, E.BinOp):
            for side in ("left", "right"):
                child = getattr(node, side)
                if not isinstance(child, E.Num):
                    return attrs.evolve(node, **{side: reduce_first(child)})
        elif isinstance(node, E.Sqrt) and not isinstance(node.operand, E.Num):
            return E.Sqrt(reduce_first(node.operand))
        elif isinstance(node, E.Pow):
            if not isinstance(node.base, E.Num):
                return E.Pow(reduce_first(node.base), node.exponent)
            if not isinstance(node.exponent, E.Num):
                return E.Pow(node.base, reduce_first(node.exponent))
        value = E.evaluate(node)
        if value.denominator != 1 or value < 0:
            raise ValueError(value)
        return E.Num(int(value))

    node = root = E.parse(sample.meta["expression"])
    chain = [E.to_text(node)]
    try:
        while not isinstance(node, E.Num):
            node = reduce_first(node)
            chain.append(E.to_text(node))
    except ValueError:
        chain.append(str(sample.question_answer))
    if sample.meta.get("rounding") and E.evaluate(root).denominator != 1:
        chain[-1] = f"{sample.question_answer} rounded down"
    return " = ".join(chain) + "."


def rework(corpus: Any, cats: dict[str, list[Any]], family: str, working: Callable[[Any], str],
           conclusion: Callable[[Any], str]) -> None:
    """Replace one family's worked answers and think traces with another way of working the
    same train items (--math-format, --mapping-format); the conclusions stay the corpus's."""
    from unisandbox_query.sandbox.corpus import TextExample
    from unisandbox_query.tokenization import END_THINK, THINK

    samples = [s for name, group in corpus.train_samples.items() if name.startswith(family) for s in group]
    prompts = {s.prompt for s in samples}
    cats[family] = [TextExample(family, s.question, f"{working(s)} {conclusion(s)}".strip()) for s in samples]
    cats["think"] = [e for e in cats["think"] if e.user not in prompts] + [
        TextExample("think", s.prompt, " ".join(f"{THINK} {working(s)} So draw {s.meta['draw']}. {END_THINK}".split()))
        for s in samples]


def verbatim_steps(sample: Any) -> str:
    """A mapping item worked by copying, for each hop, the rule's own words from its key on:
    "'H' refers to the symbol '^'. '^' points to the number '3'. '3' represents orange hearts."

    The corpus's steps reword every rule ("'^' refers to '3'."); here each token after the key
    is the token that follows it in the rule, so every step is a plain copy once the rule is
    found (the textbook induction-head pattern), and only finding it reads by content."""
    import re

    from unisandbox.tasks import mapping as M

    texts = re.split(r"\bRule \d+: ", sample.question[: sample.question.rindex(" Which ")])[1:]
    by_key = {M.parse_rule(t)[0].src: t[t.index("'"):].strip() for t in texts}
    rules, key, out = list(M.parse_rules(sample.question).rules), M.query_key(sample.question), []
    for _ in range(len(rules) + 1):  # one more than a chain can visit: an undefined key shows
        if key not in by_key:
            raise ValueError(f"no rule for '{key}' in {sample.question!r}")
        out.append(by_key[key])
        rule = next(r for r in rules if r.src == key)
        if not rule.dst_is_key:
            return " ".join(out)
        key = rule.dst
    raise ValueError(f"no object at the end of the chain in {sample.question!r}")


def scan_steps(sample: Any, whole: bool = False) -> str:
    """A mapping item worked as scans of the rule list, one per hop: "look 'J' : '2' no . 'J'
    yes . 'J' refers to '*'. look '*' : '2' no . '*' yes . '*' stands for yellow hearts."

    Each entry copies the next rule's key and says whether it is the key being looked up (a
    comparison of two nearby tokens); the step after "yes" continues copying that same rule. No
    step has to find a rule by its key's content. (Measured: the LM echoes the looked-up key
    instead of copying the rules' keys in turn — docs/sandbox-model.md.) ``whole``: each entry
    copies the whole rule, "'2' stands for blue squares. no .".
    """
    from unisandbox.tasks import mapping as M

    rules = list(M.parse_rules(sample.question).rules)
    key, out = M.query_key(sample.question), []
    for _ in range(len(rules) + 1):  # a chain visits each rule at most once
        out.append(f"look '{key}' :")
        for rule in rules:
            mark = "yes" if rule.src == key else "no"
            out.append(f"{rule.step()} {mark} ." if whole else f"'{rule.src}' {mark} .")
            if rule.src == key:
                break
        else:
            raise ValueError(f"no rule for '{key}' in {sample.question!r}")
        if not whole:
            out.append(rule.step())
        if not rule.dst_is_key:
            return " ".join(out)
        key = rule.dst
    raise ValueError(f"no object at the end of the chain in {sample.question!r}")


def mqar_warmup(umm: Any, steps: int, pairs: int, lr: float) -> None:
    """--mqar-warmup: bench/mqar.py's task in the sandbox vocabulary before the mix — keys are
    the one-character tokens rule keys are made of, values the world's colour and kind words."""
    import string

    from mqar import train
    from unisandbox_query.sandbox.corpus import direct_targets, phrase

    vocab = umm.tokenizer.get_vocab()
    keys = [vocab[c] for c in string.ascii_lowercase + string.digits + string.punctuation if c in vocab]
    words = sorted({w for t in direct_targets() for w in phrase(t).split() if w.isalpha()} & set(vocab))
    train(lambda ids, labels=None: umm.lm(input_ids=ids, labels=labels), umm.understanding_parameters(),
          pairs=pairs, steps=steps, lr=lr, every=250, label="mqar", n_keys=len(keys), n_values=len(words),
          vocab=torch.tensor([*keys, *(vocab[w] for w in words), vocab["."]]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=500, help="evaluate every this many steps")
    ap.add_argument("--weights", default=None, help="JSON: category -> weight (default: the "
                    "recipe's language-phase weights, TEXT_WEIGHTS) "
                    "(corpus categories; 'recall', 'lookup', 'lookup-dense', 'lookup-echo', "
                    "'lookup-echo-N' (N entries a list) and 'lookup-chain' (chains of 1-3 hops) "
                    "for the drills)")
    ap.add_argument("--n-train", type=int, default=600, help="train items per task in the corpus")
    ap.add_argument("--task-scale", default="{}", help="JSON: task -> multiplier of --n-train "
                    "(the recipe option task_scale; default: every task --n-train items, as before "
                    "stop 25; the recipe's own default is its TASK_SCALE), e.g. "
                    "'{\"math-1\": 0.1, \"math-3\": 6}'")
    ap.add_argument("--recall-sets", type=int, default=0, help="draw the recall drills from this "
                    "many TRAIN rule sets per mapping level (default: the corpus's own)")
    ap.add_argument("--heads", type=int, default=4, help="LM attention heads")
    ap.add_argument("--hidden", type=int, default=128, help="LM width (the MLP is 4x wider)")
    ap.add_argument("--layers", type=int, default=4, help="LM layers")
    ap.add_argument("--warmup", default="", help="CATEGORY:STEPS[,CATEGORY:STEPS...]: the first "
                    "steps train on these categories alone, in order (e.g. copy:400), then the mix")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--mix-lr", type=float, default=None, help="with --warmup: the warm-up trains at "
                    "--lr on a cosine over 1.5x its length, then the mix restarts a cosine at this rate")
    ap.add_argument("--mqar-warmup", type=int, default=0, help="first train this many steps of "
                    "multi-query associative recall (bench/mqar.py) in the sandbox vocabulary")
    ap.add_argument("--mqar-pairs", type=int, default=4, help="key-value pairs per MQAR sequence")
    ap.add_argument("--mqar-lr", type=float, default=5e-4)
    ap.add_argument("--math-format", choices=("steps", "rewrite", "direct"), default="steps",
                    help="math worked answers and think traces: the corpus's steps (\"18 %% 4 = 2. "
                    "7 - 2 = 5.\"), rewrites of the whole expression (\"7 - 18 %% 4 = 7 - 2 = 5.\") "
                    "or none (direct: the answer at once, as a generation path that reads the prompt "
                    "in one pass must find it)")
    ap.add_argument("--mapping-format", choices=("steps", "scan", "scan-rules", "verbatim"), default="steps",
                    help="mapping worked answers and think traces: the corpus's steps (\"'J' refers "
                    "to '*'. ...\") or scans of the rule list per hop (\"look 'J' : '2' no . 'J' "
                    "yes . 'J' refers to '*'. ...\"; scan-rules: each scanned rule copied whole; "
                    "verbatim: each hop's rule copied in its own words from the key on)")
    ap.add_argument("--show", type=int, default=0, help="print this many replies per task "
                    "at each evaluation")
    ap.add_argument("--n-test", type=int, default=30, help="test items per task")
    ap.add_argument("--lookup-entries", default="2-6", help="entries per lookup list, LOW-HIGH")
    ap.add_argument("--lookup-style", choices=("quoted", "bare", "one-word", "bare-one-word", "bare-verbs"), default="quoted",
                    help="lookup lists' keys and objects: quoted keys and two-word objects as in the "
                    "rules, bare keys, one-word objects, both, or bare keys with a verb before the object")
    ap.add_argument("--bare-keys", action="store_true", help="drop the quotes around rule keys in "
                    "every training text and test question (\"'C' means\" -> \"C means\")")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--key-tokens", action="store_true", help="each quoted rule key one token (\"'K'\"; "
                    "the recipe option key_tokens)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the LM's initial weights and the batch order "
                    "(binding forms as a phase change whose timing varies from seed to seed)")
    args = ap.parse_args()
    for name in ("steps", "every", "heads", "hidden", "layers", "threads", "n_test"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("mqar_warmup", "show", "recall_sets"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be at least 0")
    try:
        low, high = (int(x) for x in args.lookup_entries.split("-"))
        if not 2 <= low <= high <= 40:  # one entry is no lookup (nor a "What do A and B" question)
            raise ValueError
    except ValueError:
        ap.error(f"--lookup-entries must be LOW-HIGH with 2 <= LOW <= HIGH <= 40, got {args.lookup_entries!r}")
    try:
        warmup = [(c, int(n)) for c, n in (part.rsplit(":", 1) for part in args.warmup.split(",") if part)]
        if any(n < 1 for _, n in warmup):
            raise ValueError
    except ValueError:
        ap.error(f"--warmup must be CATEGORY:STEPS[,CATEGORY:STEPS...] with STEPS >= 1, got {args.warmup!r}")
    if args.hidden % args.heads:
        ap.error(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")
    torch.set_num_threads(args.threads)

    from unisandbox.factories import build
    from unisandbox.registry import get_registry
    from unisandbox_query.modeling_query_umm import QueryUMMConfig, cosine_lr
    from unisandbox_query.sandbox.pretrain import (
        TEXT_WEIGHTS,
        Recipe,
        SandboxPretrain,
        build_corpus,
        scratch_model,
    )

    try:
        weights: dict[str, float] = json.loads(args.weights) if args.weights else dict(TEXT_WEIGHTS)
    except json.JSONDecodeError as e:
        ap.error(f"--weights is not JSON: {e}")
    config = QueryUMMConfig()
    config.lm.update(num_attention_heads=args.heads, num_key_value_heads=args.heads,
                     hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                     num_hidden_layers=args.layers)
    umm = scratch_model(Recipe(seed=args.seed, key_tokens=args.key_tokens), config=config).umm
    try:
        corpus = build_corpus(Recipe(n_train=args.n_train, task_scale=args.task_scale))
    except ValueError as e:  # JSONDecodeError is one
        ap.error(f"--task-scale: {e}")
    cats = corpus.text_examples()
    if args.math_format == "rewrite":
        rework(corpus, cats, "math", rewrite_chain, lambda s: f"The answer is {s.question_answer}.")
    elif args.math_format == "direct":
        rework(corpus, cats, "math", lambda s: "", lambda s: f"The answer is {s.question_answer}.")
    if args.mapping_format == "verbatim":
        rework(corpus, cats, "mapping", verbatim_steps, lambda s: f"So the answer is {s.meta['draw']}.")
    elif args.mapping_format != "steps":  # scan-rules: every scanned rule copied whole
        rework(corpus, cats, "mapping", partial(scan_steps, whole=args.mapping_format == "scan-rules"),
               lambda s: f"So the answer is {s.meta['draw']}.")
        umm.config.max_answer_tokens = umm.config.max_think_tokens = 256
    if args.recall_sets:
        rule_sets = [s for t in TASKS[3:] for s in build(get_registry().task(t), {
            "world": "glyph", "split": "train", "n": args.recall_sets, "seed": 1}).samples()]
    else:
        rule_sets = [s for t in TASKS[3:] for s in corpus.train_samples[t]]
    cats["recall"] = recall_drills(rule_sets, "recall")
    cats["copy"] = corpus.copy_drills(cats)
    entries = (low, high)
    cats["lookup"] = lookup_drills(20000, "lookup", entries=entries, style=args.lookup_style)
    cats["lookup-dense"] = lookup_drills(20000, "lookup", dense=True, entries=entries, style=args.lookup_style)
    cats["lookup-echo"] = lookup_drills(20000, "lookup", echo=True, entries=entries, style=args.lookup_style)
    lookups = lookup_drills(200, "lookup-test", entries=entries, style=args.lookup_style)
    dense_lookups = {name: lookup_drills(100, "lookup-test", dense=name == "lookup-dense",
                                         echo=name == "lookup-echo", entries=entries, style=args.lookup_style)
                     for name in ("lookup-dense", "lookup-echo")}
    cats["lookup-chain"] = chain_drills(20000, "chain")
    dense_lookups["lookup-chain"] = chain_drills(100, "chain-test")
    wanted = set(weights) | {c for c, _ in warmup}
    for name in wanted:  # lookup-echo-N: exactly N entries per list (for curricula over N)
        if name.startswith("lookup-echo-") and name[12:].isdigit() and 2 <= int(name[12:]) <= 40:
            n_entries = int(name[12:])
            cats[name] = lookup_drills(20000, "lookup", echo=True, entries=(n_entries, n_entries),
                                       style=args.lookup_style)
            dense_lookups[name] = lookup_drills(100, "lookup-test", echo=True, entries=(n_entries, n_entries),
                                                style=args.lookup_style)
    unknown = wanted - set(cats)
    if unknown:
        ap.error(f"unknown categories {sorted(unknown)}; choose from {sorted(cats)}")
    reg = get_registry()
    tests = {t: build(reg.task(t), {"world": "glyph", "split": "test", "n": args.n_test}) for t in TASKS}
    drills = recall_drills([s for t in TASKS[3:] for s in tests[t].samples()], "recall-test")[::2]
    ask: Callable[[str], str] = bare_keys if args.bare_keys else str
    if args.bare_keys:
        cats = {n: [attrs.evolve(e, user=bare_keys(e.user), answer=bare_keys(e.answer)) for e in group]
                for n, group in cats.items()}
        drills = [attrs.evolve(d, user=bare_keys(d.user), answer=bare_keys(d.answer)) for d in drills]

    def share_right(examples: list[Any]) -> float:
        right, total = entries_right(umm.chat([d.user for d in examples]), examples)
        return right / total

    def evaluate() -> dict[str, float]:
        umm.eval()
        with torch.no_grad():
            out = {"recall": share_right(drills)}
            for name, examples in dense_lookups.items():
                if name in wanted:
                    out[name] = share_right(examples)
            if weights.get("lookup"):
                got = umm.chat([d.user for d in lookups])
                out["lookup"] = sum(g.strip().lower() == d.answer
                                    for g, d in zip(got, lookups, strict=True)) / len(lookups)
            for name, task in tests.items():
                samples = list(task.samples())
                answers = umm.chat([ask(s.question) for s in samples])
                right = [task.check_understanding(s, a) for s, a in zip(samples, answers, strict=True)]
                out[name] = sum(right) / len(samples)
                for s, a, ok in list(zip(samples, answers, right, strict=True))[: args.show]:
                    print(f"  {name} {'right' if ok else 'wrong'}: {s.question}\n    -> {a}")
                if task.family == "mapping":  # a pair (both keys of a rule set) must be right twice
                    pairs: dict[str, list[bool]] = {}
                    for s, ok in zip(samples, right, strict=True):
                        pairs.setdefault(json.dumps(s.meta["identity"]), []).append(ok)
                    out[f"{name} pairs"] = sum(all(p) for p in pairs.values()) / len(pairs)
        umm.train()
        return out

    if args.mqar_warmup:
        mqar_warmup(umm, args.mqar_warmup, args.mqar_pairs, args.mqar_lr)
    trainer = SandboxPretrain(progress=False)
    names = list(weights)
    sizes = {n: trainer._batch_size(umm, cats[n]) for n in {*names, *(c for c, _ in warmup)}}
    phases = [c for c, n in warmup for _ in range(n)]  # the category of each warm-up step
    rng, gen = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    params = umm.understanding_parameters()
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, betas=(0.9, 0.98))
    print(f"steps {args.steps}, mix {weights}, LM {args.layers} layers x {args.hidden} "
          f"({sum(p.numel() for p in umm.lm.parameters()) / 1e6:.2f} M parameters), {args.heads} heads, "
          f"{sum(len(cats[n]) for n in names)} examples", flush=True)
    train_seconds, t0 = 0.0, time.perf_counter()
    for step in range(args.steps):
        if args.mix_lr is None:
            rate = args.lr * cosine_lr(step, args.steps, 50)
        elif step < len(phases):
            rate = args.lr * cosine_lr(step, round(1.5 * len(phases)), 50)
        else:
            rate = args.mix_lr * cosine_lr(step - len(phases), args.steps - len(phases), 50)
        for group in opt.param_groups:
            group["lr"] = rate
        name = phases[step] if step < len(phases) else rng.choices(names, [weights[n] for n in names])[0]
        loss = trainer._text_loss(umm, rng.sample(cats[name], sizes[name]), rng, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            train_seconds += time.perf_counter() - t0
            figures = evaluate()
            print(f"step {step + 1:6d}  train {train_seconds:6.0f} s  loss {loss.item():.3f}  "
                  + "  ".join(f"{k} {100 * v:5.1f}" for k, v in figures.items()), flush=True)
            t0 = time.perf_counter()
    return 0


if __name__ == "__main__":
    sys.exit(main())
