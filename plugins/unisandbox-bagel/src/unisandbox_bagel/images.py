"""Pixels <-> tokens: the release's resize policy, patchify, grid positions, latent patches."""

from __future__ import annotations

import torch
from PIL import Image


def rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparent pixels composited on white (as the reference does)."""
    if image.mode == "RGBA" or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.split()[3])
        return white
    return image.convert("RGB")


def _divisible(value: float, stride: int) -> int:
    return max(stride, int(round(value / stride) * stride))


def target_size(width: int, height: int, max_size: int, min_size: int, stride: int,
                max_pixels: int) -> tuple[int, int]:
    """(width, height) after the reference resize: long side <= max, short side >= min,
    pixel budget, both sides multiples of ``stride``."""

    def scaled(w: float, h: float, s: float) -> tuple[int, int]:
        return _divisible(round(w * s), stride), _divisible(round(h * s), stride)

    scale = min(max_size / max(width, height), 1.0)
    scale = max(scale, min_size / min(width, height))
    new_w, new_h = scaled(width, height, scale)
    if new_w * new_h > max_pixels:
        new_w, new_h = scaled(new_w, new_h, max_pixels / (new_w * new_h))
    if max(new_w, new_h) > max_size:
        new_w, new_h = scaled(new_w, new_h, max_size / max(new_w, new_h))
    return new_w, new_h


def to_tensor(image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``[3, H, W]`` in [-1, 1], resized (bicubic) to ``size`` = (width, height) if given."""
    image = rgb(image)
    if size is not None and image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    pixels = data.view(image.size[1], image.size[0], 3).permute(2, 0, 1).float() / 255.0
    return pixels * 2.0 - 1.0


def to_image(pixels: torch.Tensor) -> Image.Image:
    """``[3, H, W]`` in [-1, 1] -> PIL, truncating to uint8 like the reference."""
    data = ((pixels.float() * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8)
    return Image.fromarray(data.permute(1, 2, 0).cpu().numpy())


def patchify(image: torch.Tensor, patch: int) -> torch.Tensor:
    """``[C, H, W]`` -> ``[(H/p)*(W/p), p*p*C]``, row-major patches, ``(row, col, channel)`` inside."""
    c, h, w = image.shape
    if h % patch or w % patch:
        raise ValueError(f"image {h}x{w} is not a multiple of the patch size {patch}")
    grid = image.reshape(c, h // patch, patch, w // patch, patch)
    return grid.permute(1, 3, 2, 4, 0).reshape(-1, patch * patch * c)


def unpatchify(tokens: torch.Tensor, rows: int, cols: int, patch: int, channels: int) -> torch.Tensor:
    """Inverse of :func:`patchify` for a batch: ``[B, rows*cols, p*p*C]`` -> ``[B, C, rows*p, cols*p]``."""
    b = tokens.shape[0]
    grid = tokens.reshape(b, rows, cols, patch, patch, channels)
    return grid.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, rows * patch, cols * patch)


def grid_positions(rows: int, cols: int, max_side: int, interpolate: bool = False) -> torch.Tensor:
    """Flattened positions of a ``rows x cols`` grid in a ``max_side``-wide table.

    Extrapolate (the release's default): cell (r, c) -> r * max_side + c. Interpolate: the grid
    is spread over the whole table, so any resolution covers the same table range.
    """
    if not interpolate:
        if rows > max_side or cols > max_side:
            raise ValueError(f"a {rows}x{cols} grid does not fit the {max_side}x{max_side} position table")
        r = torch.arange(rows)
        c = torch.arange(cols)
        return (r[:, None] * max_side + c[None, :]).reshape(-1)
    bounds = torch.arange(1 / max_side, 1.0, 1 / max_side)
    r = torch.bucketize(torch.arange(0, 1 - 1e-6, 1 / rows), bounds, right=True)
    c = torch.bucketize(torch.arange(0, 1 - 1e-6, 1 / cols), bounds, right=True)
    return (r[:, None] * max_side + c[None, :]).reshape(-1)
