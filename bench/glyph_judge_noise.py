"""How the glyph parser behaves on imperfect images (a generator's output is never exact).

Renders N random targets (shapes, fruits, flowers, portraits; canonical and random layouts),
degrades them (Gaussian pixel noise at several sigmas, Gaussian blur, a random shift of every
ink colour), saves them as uint8 (as a PNG would) and parses them. Per condition it prints:

  exact   the reading is the target (what the judge scores "yes")
  error   the reading is an "Error: ..." (scored "no"; the parser refused to guess)
  false   a clean reading of something else (would accept a wrong target; must stay ~0)
  wrong-t the judge accepting a wrong target (the true one with one key changed)

and the parse time per image. Run: ``.venv/bin/python bench/glyph_judge_noise.py --n 1000``.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import numpy as np
from PIL import Image, ImageFilter
from unisandbox.world.glyph import COLOURS, COUNTS, FLOWERS, FRUITS, PORTRAIT, SHAPES
from unisandbox.world.glyph_draw import matches, parse, render_array


def random_target(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.6:
        return {"kind": rng.choice(SHAPES), "colour": rng.choice(COLOURS),
                "count": rng.choice(COUNTS)}
    if roll < 0.8:
        return {"kind": rng.choice([k for k, _ in (*FRUITS, *FLOWERS)]), "count": rng.choice(COUNTS)}
    return {"portrait": {k: rng.choice(v) for k, v in PORTRAIT.items()}}


def wrong_target(target: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The true target with one key changed (what a wrong prompt would ask for)."""
    if "portrait" in target:
        key = rng.choice(list(PORTRAIT))
        p = dict(target["portrait"])
        p[key] = rng.choice([v for v in PORTRAIT[key] if v != p[key]])
        return {"portrait": p}
    t = dict(target)
    keys = ["count", "kind"] + (["colour"] if "colour" in t else [])
    key = rng.choice(keys)
    if key == "count":
        t["count"] = rng.choice([n for n in COUNTS if n != t["count"]])
    elif key == "colour":
        t["colour"] = rng.choice([c for c in COLOURS if c != t["colour"]])
    else:
        pool = SHAPES if "colour" in t else [k for k, _ in (*FRUITS, *FLOWERS)]
        t["kind"] = rng.choice([k for k in pool if k != t["kind"]])
    return t


def degrade(img: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    if kind == "noise":
        x = x + rng.normal(0.0, level, x.shape)
    elif kind == "blur":
        return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(level)))
    elif kind == "colour":
        # shift every non-white colour by a random offset of size `level` per channel
        ink = (img != 255).any(axis=2)
        for colour in np.unique(img[ink].reshape(-1, 3), axis=0):
            where = (img == colour).all(axis=2)
            x[where] += rng.uniform(-level, level, 3)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


OFF_PALETTE = [(245, 120, 170), (120, 70, 30), (128, 128, 128), (0, 200, 200), (200, 200, 120),
               (90, 0, 60), (255, 180, 180), (0, 90, 60)]


def garbage(kind: str, rng: random.Random, i: int) -> tuple[np.ndarray, dict[str, Any]]:
    """An image that is not a clean rendering of any answer; returns it and its nearest answer.

    blend-50 / blend-30: every object cell mixes the target's sprite with another object's
    (50 % or 30 % of the other); off-palette: a shape in a colour outside the palette;
    shift: every sprite moved one pixel right and down (still inside its cell);
    ghost-20 / ghost-40: a blank cell carries a faint copy (20 % / 40 %) of the sprite.
    """
    t = {"kind": rng.choice(SHAPES), "colour": rng.choice(COLOURS), "count": rng.choice(COUNTS)}
    img = render_array(t).astype(np.float32)
    n = t["count"]
    if kind.startswith("blend"):
        other = {**t, "count": n}
        while other == t:
            other = {"kind": rng.choice(SHAPES), "colour": rng.choice(COLOURS), "count": n}
        a = 0.5 if kind == "blend-50" else 0.3
        img = (1 - a) * img + a * render_array(other)
    elif kind == "off-palette":
        ink = (img != 255).any(axis=2)
        img[ink] = OFF_PALETTE[i % len(OFF_PALETTE)]
    elif kind == "shift":
        shifted = np.full_like(img, 255)
        shifted[1:, 1:] = img[:-1, :-1]
        img = shifted
    elif kind.startswith("ghost"):
        a = 0.2 if kind == "ghost-20" else 0.4
        cell = img[0:8, 0:8]
        r, c = divmod(n, 4) if n < 16 else (3, 3)
        img[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8] = (1 - a) * 255 + a * cell
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="targets per condition")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    conditions = [("noise", s) for s in (0, 5, 10, 20, 30, 40, 50, 60, 80)]
    conditions += [("blur", r) for r in (0.3, 0.5, 0.7, 1.0)]
    conditions += [("colour", d) for d in (20, 40, 60)]
    rng = random.Random(args.seed)
    items = []
    for i in range(args.n):
        t = random_target(rng)
        layout = "random" if i % 4 == 3 else "canonical"
        items.append((t, wrong_target(t, rng), render_array(t, layout=layout, seed=i)))
    print(f"{'condition':<14}{'exact':>8}{'error':>8}{'false':>8}{'wrong-t':>9}   (n={args.n})")
    timings = []
    for kind, level in conditions:
        nrng = np.random.default_rng(args.seed)
        exact = error = false = wrong = 0
        for target, other, img in items:
            x = degrade(img, kind, level, nrng)
            t0 = time.perf_counter()
            reading = parse(x)
            timings.append(time.perf_counter() - t0)
            ok = matches(reading, target)
            exact += ok
            error += reading.error is not None
            false += reading.error is None and not ok
            wrong += matches(reading, other)
        n = len(items)
        print(f"{kind + ' ' + str(level):<14}{exact / n:>8.3f}{error / n:>8.3f}{false / n:>8.4f}"
              f"{wrong / n:>9.4f}")
    print(f"\n{'not an answer':<14}{'error':>8}{'reads t':>8}{'other':>8}   (reads t: the "
          "underlying target; other: a clean reading of anything else)")
    for kind in ("blend-50", "blend-30", "off-palette", "shift", "ghost-20", "ghost-40"):
        grng = random.Random(args.seed)
        error = right = other = 0
        for i in range(args.n):
            img, target = garbage(kind, grng, i)
            reading = parse(img)
            error += reading.error is not None
            right += matches(reading, target)
            other += reading.error is None and not matches(reading, target)
        n = args.n
        print(f"{kind:<14}{error / n:>8.3f}{right / n:>8.3f}{other / n:>8.3f}")
    t = np.asarray(timings) * 1e6
    print(f"parse time per 32x32 image: median {np.median(t):.0f} us, mean {t.mean():.0f} us, "
          f"p99 {np.percentile(t, 99):.0f} us ({len(t)} parses, 1 thread)")


if __name__ == "__main__":
    main()
