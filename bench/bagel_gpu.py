"""BAGEL plugin throughput: random tiny and mid-size checkpoints, bf16 on CUDA, images per second.

Run through ``bench/bagel_gpu.sh`` (it sets PYTHONPATH so no install is needed). Random weights
draw nothing meaningful; the figures measure the plugin's generation path (prefill, 49 sampler
steps with text CFG, VAE decode) at the reference's settings. Also checks that accelerate's
``device_map="auto"`` path gives the same images as a plain device.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from unisandbox.records import GenerationRequest
from unisandbox_bagel.plugin import bagel
from unisandbox_bagel.tiny import TinySizes, write_tiny_checkpoint

CONFIGS = {
    # name: (sizes, image side in pixels)
    "tiny": (TinySizes(), 64),
    "mid": (TinySizes(hidden=1024, layers=8, heads=16, kv_heads=4, intermediate=2816, vit_hidden=384,
                      vit_layers=4, vit_heads=6, vit_intermediate=1536, vit_patch=14, vit_side=16,
                      ae_ch=64, ae_res_blocks=2, max_latent_size=32), 256),
}
PROMPTS = ["draw three red stars", "draw two blue circles", "draw one green square",
           "draw four yellow hearts", "draw five black triangles", "draw six white flowers",
           "draw seven red apples", "draw eight blue cats"]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_generate(model, requests, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    model.generate(requests)
    sync(device)
    return time.perf_counter() - start


def bench_config(name: str, args: argparse.Namespace, root: Path) -> None:
    sizes, side = CONFIGS[name]
    folder = write_tiny_checkpoint(root / name, seed=0, sizes=sizes)
    params = sum(t.numel() for t in load_file(str(folder / "ema.safetensors")).values())
    model = bagel(str(folder), dtype=args.dtype, device=args.device, image_size=side, steps=args.steps,
                  think_tokens=args.think_tokens)
    reqs = [GenerationRequest(PROMPTS[i % len(PROMPTS)], "normal", i) for i in range(args.batch)]
    timed_generate(model, reqs[:1], args.device)  # warm-up (kernels, allocator)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    print(f"[{name}] {params / 1e6:.1f} M parameters, {side}x{side} px, {args.steps} grid points, "
          f"{args.dtype} on {args.device}")
    for batch in sorted({1, args.batch}):
        times = [timed_generate(model, reqs[:batch], args.device) for _ in range(args.repeat)]
        best = min(times)
        print(f"[{name}] normal  batch {batch:3d}: {batch / best:8.2f} images/s "
              f"({best / batch * 1000:8.1f} ms/image, best of {args.repeat})")
    think = [GenerationRequest(r.prompt, "think", r.seed) for r in reqs]
    best = min(timed_generate(model, think, args.device) for _ in range(args.repeat))
    print(f"[{name}] think   batch {args.batch:3d}: {args.batch / best:8.2f} images/s "
          f"(plans of up to {args.think_tokens - 1} tokens)")
    if args.device.startswith("cuda"):
        print(f"[{name}] peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if args.check_device_map:
        mapped = bagel(str(folder), dtype=args.dtype, device_map="auto", image_size=side, steps=args.steps,
                       think_tokens=args.think_tokens)
        a = np.asarray(model.generate(reqs[:2])[0].image, dtype=np.int16)
        b = np.asarray(mapped.generate(reqs[:2])[0].image, dtype=np.int16)
        print(f"[{name}] device_map=auto vs device: max pixel difference {np.abs(a - b).max()}")
    del model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--configs", default="tiny,mid")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--think-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-device-map-check", dest="check_device_map", action="store_false")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --device cpu --dtype float32 for a dry run")
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="bagel-bench-") as tmp:
        for name in args.configs.split(","):
            bench_config(name.strip(), args, Path(tmp))


if __name__ == "__main__":
    main()
