"""Is the count in the frozen states STARS stage III can read? A linear probe per layer.

STARS stage III trains only the generation path (queries, connector, denoiser) on raw prompts
with the understanding side frozen, so the generator can learn a reasoning prompt's count
only if the frozen LM puts it somewhere the queries can read. This fits a linear classifier
(multinomial logistic regression, standardised features, L2) on ``query_states`` — every
layer's residual stream at the last text token (``baseline``) and at the queries (their mean)
— of TRAIN-split math prompts, and scores it on held-out TEST items: the count (1-5, chance
20 %) and, as the control that the probe reads anything at all, the object's kind. Normal
mode is what stage III trains on; think mode (the prompt and the model's own reasoning) shows
what the same probe reads when the plan is in the context.

    .venv/bin/python bench/count_probe.py                       # the shipped checkpoint
    .venv/bin/python bench/count_probe.py --checkpoint DIR --n-train 2000 --modes normal
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

SHIPPED = "plugins/unisandbox-query/src/unisandbox_query/pretrained/query-tiny"
TASKS = ("math-1", "math-2", "math-3")


def states(model: Any, samples: list[Any], mode: str) -> torch.Tensor:
    """[N, layers, 2, width]: per sample and layer, the baseline and the queries' mean."""
    from unisandbox.records import GenerationRequest

    got = model.query_states([GenerationRequest(s.prompt, mode, 0) for s in samples])
    return torch.stack([torch.stack([q.hidden[:, 0], q.hidden[:, 1:].mean(1)], 1) for q in got])


def probe_accuracy(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                   y_test: torch.Tensor, l2: float = 1e-3, iterations: int = 200) -> float:
    """Test accuracy of a multinomial logistic regression fitted with L-BFGS."""
    mean, std = x_train.mean(0), x_train.std(0).clamp(min=1e-6)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    classes = int(max(y_train.max(), y_test.max())) + 1
    linear = torch.nn.Linear(x_train.shape[1], classes)
    torch.nn.init.zeros_(linear.weight)  # the loss is convex: start at zero so the fit never depends on the global RNG
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x_train), y_train) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float((linear(x_test).argmax(-1) == y_test).float().mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=SHIPPED, help="sandbox model folder")
    ap.add_argument("--n-train", type=int, default=1000, help="train-split prompts per level")
    ap.add_argument("--n-test", type=int, default=200, help="held-out test items per level")
    ap.add_argument("--modes", default="normal,think")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-count-probe"))
    args = ap.parse_args()
    if not Path(args.checkpoint).is_dir():
        ap.error(f"--checkpoint {args.checkpoint}: no such folder")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"normal", "think"}:
        ap.error("--modes: normal and/or think")
    from unisandbox.factories import build
    from unisandbox.registry import get_registry
    from unisandbox_query.model import QueryModel

    model = QueryModel.from_pretrained(args.checkpoint)
    reg = get_registry()
    t0 = time.perf_counter()
    figures: dict[str, Any] = {"checkpoint": args.checkpoint, "n_train": args.n_train, "n_test": args.n_test}
    positions = ("baseline", "queries")
    for task_name in TASKS:
        split = {s: build(reg.task(task_name), {"world": "glyph", "split": s, "n": n}).samples()
                 for s, n in (("train", args.n_train), ("test", args.n_test))}
        kinds = sorted({s.target["kind"] for part in split.values() for s in part})
        labels = {part: {"count": torch.tensor([s.target["count"] - 1 for s in samples]),
                         "kind": torch.tensor([kinds.index(s.target["kind"]) for s in samples])}
                  for part, samples in split.items()}
        for mode in modes:
            x = {part: states(model, samples, mode) for part, samples in split.items()}
            layers = x["train"].shape[1]
            table = {what: {pos: [probe_accuracy(x["train"][:, layer, p], labels["train"][what],
                                                 x["test"][:, layer, p], labels["test"][what])
                                  for layer in range(layers)]
                            for p, pos in enumerate(positions)}
                     for what in ("count", "kind")}
            figures[f"{task_name}/{mode}"] = table
            print(f"\n{task_name} {mode} (test accuracy per layer, embeddings first; count chance 20 %, "
                  f"kind chance {100 / len(kinds):.0f} %)")
            for what, rows in table.items():
                for pos, accs in rows.items():
                    print(f"  {what:5} {pos:8} " + " ".join(f"{100 * a:5.1f}" for a in accs))
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2))
    print(f"\n{figures['seconds']} s; figures in {args.out / 'figures.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
