"""Does a bf16 model train at a small learning rate? fp32 master weights vs stepping bf16.

Builds the BAGEL plugin's tiny random checkpoint (bf16, ``unisandbox-bagel make-tiny``),
writes a knowledge corpus, runs ``inject`` twice (``master_weights`` true / false) and prints
the share of understanding weights that changed. An AdamW step of lr 1e-5 is below bf16's
resolution at most weights: stepped in bf16 it rounds away.

    .venv/bin/python bench/master_weights.py [--steps 60] [--lr 1e-5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

MODEL_ARGS = {"device": "cpu", "image_size": 64, "steps": 4, "think_tokens": 6, "answer_tokens": 6}


def changed_share(base: Path, trained: Path) -> float:
    from unisandbox.factories import build
    from unisandbox.registry import get_registry

    spec = get_registry().model("bagel")
    before = build(spec, {"path": str(base), **MODEL_ARGS}).trainable_parameters("understanding")
    after = build(spec, {"path": str(trained), **MODEL_ARGS}).trainable_parameters("understanding")
    changed = sum(int((a != b).sum()) for a, b in zip(after, before, strict=True))
    return changed / sum(p.numel() for p in before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-5)
    args = parser.parse_args()
    exe = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([exe / "unisandbox-bagel", "make-tiny", str(root / "bagel")], check=True,
                       capture_output=True)
        corpus = root / "corpus.jsonl"
        subprocess.run([exe / "unisandbox", "data", "generate", "knowledge-corpus", "--world",
                        "glyph", "--n-characters", "2", "--out", str(corpus)], check=True,
                       capture_output=True)
        model = [a for k, v in MODEL_ARGS.items() for a in ("--model-arg", f"{k}={v}")]
        for masters in ("true", "false"):
            out = root / f"inject-{masters}"
            subprocess.run([exe / "unisandbox", "train", "inject", "--model", "bagel",
                            "--model-arg", f"path={root / 'bagel'}", *model,
                            "--train-arg", f"data={corpus}", "--train-arg", f"steps={args.steps}",
                            "--train-arg", "batch_size=4", "--train-arg", f"lr={args.lr}",
                            "--train-arg", f"master_weights={masters}", "--quiet", "--out", str(out)],
                           check=True, capture_output=True)
            share = changed_share(root / "bagel", out / "model")
            print(f"master_weights={masters}: {100 * share:.1f} % of the understanding weights "
                  f"changed ({args.steps} steps, lr {args.lr:g}, bf16)")


if __name__ == "__main__":
    main()
