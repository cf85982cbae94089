"""Exact renderer and parser of the glyph world (the ``glyph`` judge's eyes).

An image is 32x32 RGB: a 4x4 grid of 8x8 cells on white, one object per cell, flat colours
(see ``docs/glyph-world.md``). Objects fill the first ``count`` cells in reading order
(``layout="canonical"``) or ``count`` cells drawn from a seed (``layout="random"``, the hard
tier); a portrait fills the whole grid. Cells are aligned with a patch-8 generator's tokens,
so each token has exactly one object to draw.

Parsing is nearest-template matching, which is the maximum-likelihood reading under Gaussian
pixel noise: each cell is compared with every cell template (blank, 48 shapes, 12 fruits and
flowers, each also slightly blurred; every font symbol in every ink), a portrait image with
every one of the 160 portraits. A reading is accepted only when it is close (mean squared
error under ``MAX_CELL_MSE``), clearly closer than the best reading of another meaning (at
most 30 % of the way towards it, ``MIN_MARGIN``) and, for objects, each sprite colour is near
its palette colour (``MAX_COLOUR_OFFSET``); anything else is an unreadable cell, so a
generator's half-drawn object is an error rather than a guess.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from PIL import Image, ImageFilter

from . import glyph_sprites as art
from .glyph import COLOURS, FLOWERS, FRUITS, PLURAL, PORTRAIT, SHAPES

#: Bump when the parsing rules change; the sprite data is hashed into the judge identity too.
PARSER_VERSION = "glyph-parser-1"
SIZE, GRID, CELL = 32, 4, 8
N_CELLS = GRID * GRID
LAYOUTS = ("canonical", "random")
#: A cell (or portrait cell) must be this close to its template: mean squared error per
#: channel value in [0, 1] (0.04 ~ Gaussian noise of sigma 51/255, or ~5 wrong pixels).
MAX_CELL_MSE = 0.04
#: ... and lie at most 30 % of the way towards the nearest reading of another meaning:
#: (d_other - d_best) / |t_other - t_best|^2 = 1 - 2 * projection >= 0.4.
MIN_MARGIN = 0.4
#: Each colour of the matched sprite, averaged over its pixels, must be this close (Euclidean,
#: values in [0, 1]) to the sprite's own: a shape in a colour outside the palette is unreadable,
#: not the nearest palette colour.
MAX_COLOUR_OFFSET = 60 / 255
#: Every object template is also matched blurred by these Gaussian radii (px): a generator
#: trained with a regression loss draws soft edges, and blur is not a different answer.
BLUR_RADII = (0.0, 0.5, 0.8)

FRUIT_KINDS = tuple(k for k, _ in FRUITS)
FLOWER_KINDS = tuple(k for k, _ in FLOWERS)
_PLURALS: dict[str, str] = {**{s: PLURAL.get(s, s + "s") for s in SHAPES}, **dict(FRUITS),
                            **dict(FLOWERS)}
SYMBOLS = tuple(art.FONT)
SYMBOL_COLOURS = ("black", *COLOURS)
_TARGET_KEYS = ("kind", "colour", "count")


def category_of(kind: str) -> str:
    """'shape', 'fruit' or 'flower'; ValueError for a kind the glyph world cannot draw."""
    if kind in SHAPES:
        return "shape"
    if kind in FRUIT_KINDS:
        return "fruit"
    if kind in FLOWER_KINDS:
        return "flower"
    raise ValueError(f"unknown kind {kind!r}; the glyph world draws "
                     f"{', '.join((*SHAPES, *FRUIT_KINDS, *FLOWER_KINDS))}")


# --- targets ---------------------------------------------------------------------------

def check_target(target: Any, *, complete: bool = False) -> dict[str, Any]:
    """Validate a structured answer; returns it as a plain dict (``None`` values dropped).

    ``complete=True`` (rendering) also needs what a drawing cannot leave open: a shape's
    colour and all four portrait attributes. Matching accepts partial targets (keys absent
    are not checked). Errors are ValueErrors naming the bad key or value.
    """
    if not isinstance(target, Mapping):
        raise ValueError(f"target must be a mapping, got {type(target).__name__}")
    t = {k: v for k, v in target.items() if v is not None}
    if not t:
        raise ValueError("target is empty: nothing to draw or check")
    for key in ("kind", "colour", "symbol"):
        if key in t and not isinstance(t[key], str):
            raise ValueError(f"target {key!r} must be a string, got {t[key]!r}")
    if "portrait" in t:
        extra = sorted(set(t) - {"portrait"})
        if extra:
            raise ValueError(f"portrait target has unexpected key {extra[0]!r}")
        p = t["portrait"]
        if not isinstance(p, Mapping):
            raise ValueError(f"target 'portrait' must be a mapping, got {type(p).__name__}")
        for key, value in p.items():
            if key not in PORTRAIT:
                raise ValueError(f"unknown portrait attribute {key!r}; expected {', '.join(PORTRAIT)}")
            if value not in PORTRAIT[key]:
                raise ValueError(f"portrait {key} {value!r} is not one of {', '.join(PORTRAIT[key])}")
        missing = [k for k in PORTRAIT if k not in p]
        if complete and missing:
            raise ValueError(f"portrait target misses {missing[0]!r}")
        if not p:
            raise ValueError("portrait target is empty")
        return {"portrait": dict(p)}
    if "symbol" in t:
        extra = sorted(set(t) - {"symbol", "colour", "count"})
        if extra:
            raise ValueError(f"symbol target has unexpected key {extra[0]!r}")
        if t["symbol"] not in art.FONT:
            raise ValueError(f"symbol {t['symbol']!r} is not in the font ({''.join(SYMBOLS)})")
        if "colour" in t and t["colour"] not in SYMBOL_COLOURS:
            raise ValueError(f"symbol colour {t['colour']!r} is not one of {', '.join(SYMBOL_COLOURS)}")
    else:
        extra = sorted(set(t) - set(_TARGET_KEYS))
        if extra:
            raise ValueError(f"unknown target key {extra[0]!r}; expected kind, colour, count, "
                             "portrait or symbol")
        if "kind" not in t:
            raise ValueError("target needs 'kind' (or 'portrait')")
        category = category_of(t["kind"])
        if category == "shape":
            if "colour" in t and t["colour"] not in COLOURS:
                raise ValueError(f"colour {t['colour']!r} is not one of {', '.join(COLOURS)}")
            if complete and "colour" not in t:
                raise ValueError(f"shape {t['kind']!r} needs a 'colour' to be drawn")
        elif "colour" in t:
            raise ValueError(f"{category} {t['kind']!r} has fixed colours; drop 'colour' "
                             f"(got {t['colour']!r})")
    if "count" in t:
        n = t["count"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= N_CELLS:
            raise ValueError(f"count {n!r} cannot be drawn: the grid holds 1 to {N_CELLS} objects")
    return t


def describe(target: Mapping[str, Any]) -> str:
    """The one-line description a perfect rendering of ``target`` reads as."""
    t = check_target(target, complete=True)
    if "portrait" in t:
        return _person_text(t["portrait"])
    if "symbol" in t:
        return "Error: visible symbol"
    return _object_text(t["kind"], t.get("colour"), t.get("count", 1))


def _object_text(kind: str, colour: str | None, count: int) -> str:
    if category_of(kind) == "shape":
        return f"{count} {colour} {kind if count == 1 else _PLURALS[kind]}"
    return f"Object: {kind}" if count == 1 else f"{count} {_PLURALS[kind]}"


def _person_text(p: Mapping[str, str]) -> str:
    return "Person: " + "; ".join(p[k] for k in PORTRAIT)


# --- drawing ---------------------------------------------------------------------------

def _sprite(rows: list[str], inks: Mapping[str, tuple[int, int, int]]) -> np.ndarray:
    """An 8x8x3 uint8 cell: the 7x7 drawing at the top-left on white."""
    cell = np.full((CELL, CELL, 3), 255, np.uint8)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            if ch != ".":
                cell[y, x] = inks[ch]
    return cell


@functools.cache
def _object_cell(kind: str, colour: str | None) -> np.ndarray:
    if kind in art.SHAPE_ART:
        return _sprite(art.art_rows(art.SHAPE_ART[kind]), {"#": art.PALETTE[colour or ""]})
    drawing = art.FRUIT_ART.get(kind) or art.FLOWER_ART[kind]
    return _sprite(art.art_rows(drawing), art.SPRITE_INK)


@functools.cache
def _symbol_cell(symbol: str, colour: str) -> np.ndarray:
    ink = art.SYMBOL_INK if colour == "black" else art.PALETTE[colour]
    return _sprite(art.font_rows(symbol), {"#": ink})


def _cells(count: int, layout: str, seed: int) -> list[int]:
    if layout == "canonical":
        return list(range(count))
    if layout == "random":
        return sorted(random.Random(seed).sample(range(N_CELLS), count))
    raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")


def _portrait(p: Mapping[str, str]) -> np.ndarray:
    """Draw a portrait (see ``glyph_sprites``: every attribute owns its own features)."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = art.BACKDROP
    skin, hair = art.SKIN[p["ethnicity"]], art.HAIR[p["hair"]]
    age, female = p["age"], p["gender"] == "female"
    kid = age == "kid"
    # body: a narrow one for a kid, shoulders for everyone else
    if kid:
        img[27:32, 9:23], img[24:27, 14:18] = art.SHIRT, skin
    else:
        img[26:32, 3:29], img[24:26, 13:19] = art.SHIRT, skin
    img[8:24, 8:24] = skin
    img[23, 8] = img[23, 23] = art.BACKDROP
    # hair: cap, fringe, sideburns; long hair to the shoulders for women
    img[3, 9:23] = hair
    img[4:8, 7:25] = hair
    img[8, 8:24] = hair
    img[8:15, 6:8] = img[8:15, 24:26] = hair
    if female:
        img[8:28, 4:8] = img[8:28, 24:28] = hair
    img[14:16, 11:13] = img[14:16, 19:21] = art.EYES
    img[20, 14:18] = art.MOUTH
    lum = 0.299 * skin[0] + 0.587 * skin[1] + 0.114 * skin[2]
    wrinkle = art.WRINKLE_DARK if lum > 150 else art.WRINKLE_LIGHT
    if kid:
        img[18:20, 10:12] = img[18:20, 20:22] = art.CHEEKS
    elif age == "middle-aged":
        img[11, 11:21] = wrinkle
        img[26:32, 15:17] = art.TIE
    elif age == "old":
        img[10, 11:21] = img[12, 11:21] = wrinkle
        img[19:22, 12] = img[19:22, 19] = wrinkle
        img[15, 27:31] = art.CANE
        img[16:32, 29:31] = art.CANE
    return img


def render_array(target: Mapping[str, Any], *, layout: str = "canonical", seed: int = 0) -> np.ndarray:
    """Like :func:`render` but a (32, 32, 3) uint8 array (no PIL round trip, for training)."""
    t = check_target(target, complete=True)
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if "portrait" in t:
        return _portrait(t["portrait"])
    if "symbol" in t:
        cell = _symbol_cell(t["symbol"], t.get("colour", "black"))
    else:
        cell = _object_cell(t["kind"], t.get("colour"))
    img = np.full((SIZE, SIZE, 3), 255, np.uint8)
    for i in _cells(t.get("count", 1), layout, seed):
        r, c = divmod(i, GRID)
        img[r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL] = cell
    return img


def render(target: Mapping[str, Any], *, size: int = SIZE, layout: str = "canonical",
           seed: int = 0) -> Image.Image:
    """Draw the canonical image of a structured answer.

    ``{"kind": "star", "colour": "red", "count": 3}`` (shapes need a colour), ``{"kind":
    "tulip"}`` (fruits and flowers have fixed colours; count defaults to 1), ``{"portrait":
    {ethnicity, hair, age, gender}}`` (the whole grid), ``{"symbol": "A"}`` (tests and
    bring-your-own images). ``size`` must be a multiple of 32 (nearest-neighbour upscaling);
    ``layout="random"`` places objects in ``count`` cells drawn from ``seed``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < SIZE or size % SIZE:
        raise ValueError(f"size {size!r} must be a positive multiple of {SIZE}")
    image = Image.fromarray(render_array(target, layout=layout, seed=seed), "RGB")
    return image if size == SIZE else image.resize((size, size), Image.Resampling.NEAREST)


# --- the template banks ----------------------------------------------------------------

@attrs.frozen
class _Bank:
    """Cell templates grouped by meaning (a class), plus the 160 portraits."""

    templates: np.ndarray          # (T, 192) float32 in [0, 1], sorted by class
    sq: np.ndarray                 # (T,) squared norms
    cls: np.ndarray                # (T,) class index of each template
    radius: np.ndarray             # (T,) blur radius of each template (0: the exact sprite)
    starts: np.ndarray             # (C,) first template of each class
    classes: tuple[tuple[str, str | None, str | None], ...]  # (category, kind, colour)
    labels: tuple[str, ...]        # per template: "red star", "symbol A", ...
    pair: np.ndarray               # (T, T) squared distances between templates
    groups: np.ndarray             # (T, G, 64) per ink colour: weights over its pixels
    portraits: np.ndarray          # (P, 3072) float32
    portrait_sq: np.ndarray
    portrait_attrs: tuple[dict[str, str], ...]
    portrait_values: np.ndarray    # (P, 4) index of each attribute's value
    portrait_pair: np.ndarray      # (P, P)
    digest: str


def _blurred(img: np.ndarray, radius: float) -> np.ndarray:
    if radius == 0:
        return img
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def _blurred_cell(cell: np.ndarray, radius: float) -> np.ndarray:
    """Blur one cell as if it sat on a white page (no neighbours)."""
    page = np.full((3 * CELL, 3 * CELL, 3), 255, np.uint8)
    page[CELL : 2 * CELL, CELL : 2 * CELL] = cell
    return _blurred(page, radius)[CELL : 2 * CELL, CELL : 2 * CELL]


_MAX_GROUPS = 4
#: Colour groups smaller than this are left to the distance test (one pixel is all noise).
_MIN_GROUP_PIXELS = 5


def _colour_groups(cell: np.ndarray) -> list[np.ndarray]:
    """One weight vector over the 64 pixels per ink colour of a sprite (weights sum to 1)."""
    pixels = cell.reshape(-1, 3)
    ink = (pixels != 255).any(axis=1)
    out = []
    for colour in np.unique(pixels[ink], axis=0):
        mask = (pixels == colour).all(axis=1)
        if mask.sum() >= _MIN_GROUP_PIXELS:
            out.append(mask.astype(np.float32) / mask.sum())
    if len(out) > _MAX_GROUPS:
        raise ValueError(f"a sprite may have at most {_MAX_GROUPS} colours of >= "
                         f"{_MIN_GROUP_PIXELS} pixels")
    return out


def _flat(cell: np.ndarray) -> np.ndarray:
    return cell.reshape(-1).astype(np.float32) / 255.0


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)


@functools.cache
def bank() -> _Bank:
    """Build (once) every cell template and every portrait."""
    rows: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    radii_of: list[float] = []
    cls: list[int] = []
    labels: list[str] = []
    classes: list[tuple[str, str | None, str | None]] = []

    def add(category: str, kind: str | None, colour: str | None,
            cells: list[tuple[str, np.ndarray]], radii: tuple[float, ...] = BLUR_RADII) -> None:
        classes.append((category, kind, colour))
        for label, cell in cells:
            weights = _colour_groups(cell) if category in ("shape", "fruit", "flower") else []
            for radius in radii:
                rows.append(_flat(_blurred_cell(cell, radius)))
                radii_of.append(radius)
                groups.append(np.zeros((_MAX_GROUPS, CELL * CELL), np.float32))
                for g, w in enumerate(weights):
                    groups[-1][g] = w
                cls.append(len(classes) - 1)
                labels.append(label)

    add("blank", None, None, [("", np.full((CELL, CELL, 3), 255, np.uint8))])
    for s in SHAPES:
        for c in COLOURS:
            add("shape", s, c, [(f"{c} {s}", _object_cell(s, c))])
    for k in (*FRUIT_KINDS, *FLOWER_KINDS):
        add(category_of(k), k, None, [(k, _object_cell(k, None))])
    # symbols only sharp: a blurred thin stroke is too close to a blank cell, and any
    # unreadable cell is scored wrong just like a visible symbol
    add("symbol", None, None, [(f"symbol {ch}", _symbol_cell(ch, c))
                               for ch in SYMBOLS for c in SYMBOL_COLOURS], radii=(0.0,))
    templates = np.stack(rows)
    cls_arr = np.asarray(cls)
    starts = np.flatnonzero(np.r_[True, cls_arr[1:] != cls_arr[:-1]])
    people = [dict(zip(PORTRAIT, values, strict=True))
              for values in itertools.product(*PORTRAIT.values()) for _ in BLUR_RADII]
    portraits = np.stack([_flat(_blurred(_portrait(p), r))
                          for p, r in zip(people, itertools.cycle(BLUR_RADII))])
    digest = hashlib.sha256(PARSER_VERSION.encode() + np.ascontiguousarray(templates).tobytes()
                            + np.ascontiguousarray(portraits).tobytes()).hexdigest()[:16]
    return _Bank(templates, (templates**2).sum(1), cls_arr, np.asarray(radii_of), starts,
                 tuple(classes),
                 tuple(labels), _sqdist(templates, templates), np.stack(groups), portraits,
                 (portraits**2).sum(1), tuple(people),
                 np.array([[PORTRAIT[k].index(p[k]) for k in PORTRAIT] for p in people]),
                 _sqdist(portraits, portraits), digest)


def templates_digest() -> str:
    """A short hash of the parser version and every template (the judge's cache key)."""
    return bank().digest


# --- parsing ---------------------------------------------------------------------------

@attrs.frozen
class Reading:
    """What an image shows, in the style of the original judge's stage-1 description.

    ``error`` is None for a clean rendering of one answer, else a short reason ("mixed
    kinds", "unreadable cell (1,2)", "visible symbol", "blank", ...). ``cells`` lists the
    16 cells in reading order ("" blank, "?" unreadable, else what the cell shows).
    """

    kind: str | None = None
    colour: str | None = None
    count: int | None = None
    portrait: dict[str, str] | None = None
    error: str | None = None
    text: str = ""
    category: str | None = None
    layout: str | None = None
    symbols: str = ""
    cells: tuple[str, ...] = ()

    def report(self) -> str:
        """The parser's report, one JSON line (kept as the verdict's raw text)."""
        data = {k: v for k, v in attrs.asdict(self).items() if v not in (None, "", ())}
        data["parser"] = PARSER_VERSION
        return json.dumps(data, sort_keys=True)


def _fail(reason: str, **fields: Any) -> Reading:
    return Reading(error=reason, text=f"Error: {reason}", **fields)


def as_array(image: Image.Image | np.ndarray | str | Path) -> np.ndarray:
    """A (32, 32, 3) float32 array in [0, 1] from an image, array or file.

    Square images whose side is a multiple of 32 are box-filtered down to 32 px (upscaled
    renders, a real model's 256 px output); transparency is composited on white. Float
    arrays are taken as values in [0, 1] (a generator's slight overshoot is clipped). Other
    sizes raise ValueError.
    """
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            opened.load()
            return as_array(opened)
    if isinstance(image, Image.Image):
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grey: PIL's
            # convert clips every value above 255 to white, so scale the range down instead
            wide = np.asarray(image, dtype=np.float32)
            top = 1.0 if image.mode == "F" and wide.size and wide.max() <= 1.0 else (
                255.0 if wide.size and wide.max() <= 255 else 65535.0)
            grey = np.clip(wide / top, 0.0, 1.0)
            image = Image.fromarray((grey * 255.0 + 0.5).astype(np.uint8), "L")
        if image.mode != "RGB":
            rgba = image.convert("RGBA")
            ground = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(ground, rgba).convert("RGB")
        arr = np.asarray(image, dtype=np.float32) / 255.0
    else:
        arr = np.asarray(image)
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        else:
            arr = arr.astype(np.float32)
            if arr.size and (arr.min() < -0.25 or arr.max() > 1.25):
                raise ValueError(f"float image values must lie in [0, 1], got "
                                 f"[{arr.min():.2f}, {arr.max():.2f}]")
            arr = np.clip(arr, 0.0, 1.0)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"image array must be HxWx3, got shape {arr.shape}")
    h, w = arr.shape[:2]
    if h != w or h < SIZE or h % SIZE:
        raise ValueError(f"image is {w}x{h}; the glyph judge reads square images whose side "
                         f"is a multiple of {SIZE}")
    if h != SIZE:
        f = h // SIZE
        arr = arr.reshape(SIZE, f, SIZE, f, 3).mean(axis=(1, 3))
    return arr


def parse(image: Image.Image | np.ndarray | str | Path) -> Reading:
    """Read an image back into (kind, colour, count), a portrait, or an error reason."""
    arr = as_array(image)
    b = bank()
    cells = arr.reshape(GRID, CELL, GRID, CELL, 3).transpose(0, 2, 1, 3, 4).reshape(N_CELLS, -1)
    d = np.maximum((cells * cells).sum(1)[:, None] - 2.0 * cells @ b.templates.T + b.sq, 0.0)
    objects, clean_cells = _read_objects(cells, d)
    if clean_cells:
        return objects  # every cell reads as an object or blank: not a portrait
    flat = arr.reshape(1, -1)
    dp = np.maximum((flat * flat).sum() - 2.0 * flat @ b.portraits.T + b.portrait_sq, 0.0)[0]
    best_person = int(dp.argmin())
    if dp[best_person] < d.min(1).sum():
        return _read_portrait(arr, dp, best_person)
    return objects


def _read_objects(cells_x: np.ndarray, d: np.ndarray) -> tuple[Reading, bool]:
    """The reading of an image as objects, and whether every cell was readable."""
    b = bank()
    rows = np.arange(N_CELLS)
    per_class = np.minimum.reduceat(d, b.starts, axis=1)               # (16, C)
    order = np.argpartition(per_class, 1, axis=1)[:, :2]
    swap = per_class[rows, order[:, 0]] > per_class[rows, order[:, 1]]
    c1 = np.where(swap, order[:, 1], order[:, 0])
    c2 = np.where(swap, order[:, 0], order[:, 1])
    # best template inside each of the two classes
    t1 = np.where(b.cls[None, :] == c1[:, None], d, np.inf).argmin(1)
    t2 = np.where(b.cls[None, :] == c2[:, None], d, np.inf).argmin(1)
    d1, d2 = d[rows, t1], d[rows, t2]
    margin = (d2 - d1) / np.maximum(b.pair[t1, t2], 1e-9)
    unclear = (d1 / cells_x.shape[1] > MAX_CELL_MSE) | (margin < MIN_MARGIN)
    residual = (cells_x - b.templates[t1]).reshape(N_CELLS, -1, 3)
    offset = np.linalg.norm(b.groups[t1] @ residual, axis=2).max(1)     # (16,)
    off_colour = ~unclear & (offset > MAX_COLOUR_OFFSET)

    labels: list[str] = []
    found: list[int] = []
    symbols = ""
    for i in range(N_CELLS):
        if unclear[i] or off_colour[i]:
            labels.append("?colour" if off_colour[i] else "?")
            continue
        category = b.classes[c1[i]][0]
        labels.append(b.labels[t1[i]])
        if category == "symbol":
            symbols += b.labels[t1[i]].removeprefix("symbol ")
        elif category != "blank":
            found.append(int(c1[i]))
    cells = tuple(labels)
    bad = np.flatnonzero(unclear | off_colour)
    if len(bad):
        r, c = divmod(int(bad[0]), GRID)
        what = "off-palette colour in" if off_colour[bad[0]] else "unreadable"
        return _fail(f"{what} cell ({r},{c})", cells=cells, symbols=symbols), False
    if symbols:
        return _fail("visible symbol", cells=cells, symbols=symbols), True
    if not found:
        return _fail("blank", cells=cells), True
    if len({b.classes[c][1] for c in found}) > 1:
        return _fail("mixed kinds", cells=cells), True
    if len(set(found)) > 1:
        return _fail("mixed colours", cells=cells), True
    category, kind, colour = b.classes[found[0]]
    assert kind is not None
    count = len(found)
    occupied = [i for i, label in enumerate(labels) if label]
    layout = "canonical" if occupied == list(range(count)) else "random"
    return Reading(kind=kind, colour=colour, count=count, category=category, layout=layout,
                   text=_object_text(kind, colour, count), cells=cells), True


def _read_portrait(arr: np.ndarray, dp: np.ndarray, best: int) -> Reading:
    b = bank()
    person = b.portrait_attrs[best]
    template = b.portraits[best].reshape(SIZE, SIZE, 3)
    err = ((arr - template) ** 2).reshape(GRID, CELL, GRID, CELL, 3).mean(axis=(1, 3, 4))
    bad = np.argwhere(err > MAX_CELL_MSE)
    if len(bad):
        r, c = (int(v) for v in bad[0])
        return _fail(f"unreadable cell ({r},{c})", category="portrait")
    for k, key in enumerate(PORTRAIT):
        alt = int(np.where(b.portrait_values[:, k] != b.portrait_values[best, k], dp, np.inf).argmin())
        margin = (dp[alt] - dp[best]) / max(float(b.portrait_pair[best, alt]), 1e-9)
        if margin < MIN_MARGIN:
            return _fail(f"unclear {key}", category="portrait")
    return Reading(portrait=dict(person), category="portrait", text=_person_text(person))


def facets(reading: Reading, target: Mapping[str, Any]) -> dict[str, bool]:
    """Which parts of the target the reading got right: ``object`` (kind, and colour when the
    target has one) and ``count``, or each portrait attribute. An error reading gets none."""
    t = check_target(target)
    if "portrait" in t:
        shown = (reading.portrait or {}) if reading.error is None else {}
        return {k: shown.get(k) == v for k, v in t["portrait"].items()}
    clean = reading.error is None
    out = {"object": clean and reading.kind == t.get("kind")
           and ("colour" not in t or reading.colour == t["colour"])}
    if "count" in t:
        out["count"] = clean and reading.count == t["count"]
    return out


def matches(reading: Reading, target: Mapping[str, Any]) -> bool:
    """Does the reading show the target? Only keys present in the target are checked.

    An error reading never matches. ValueError for a target the glyph world cannot express
    (an unknown kind, a count the grid cannot hold, a symbol: a symbol is never an answer).
    """
    t = check_target(target)
    if "symbol" in t:
        raise ValueError("a symbol target is never an answer: any visible symbol is an error")
    if reading.error is not None:
        return False
    if "portrait" in t:
        return reading.portrait is not None and all(reading.portrait.get(k) == v
                                                    for k, v in t["portrait"].items())
    return all(getattr(reading, key) == t[key] for key in _TARGET_KEYS if key in t)
