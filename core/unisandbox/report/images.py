"""Images as data URIs, shrunk so a report of 1024-px samples stays a few megabytes."""

from __future__ import annotations

import base64
import io
from pathlib import Path

#: a PNG thumbnail bigger than this is re-encoded as JPEG (photographs compress badly as PNG)
PNG_LIMIT = 120_000


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def data_uri(path: Path, max_side: int = 256) -> str | None:
    """``path`` as a data URI no larger than ``max_side`` px a side; None if unreadable."""
    got = thumbnail(path, max_side)
    return got[0] if got else None


def thumbnail(path: Path, max_side: int = 256) -> tuple[str, int] | None:
    """(data URI, the image's original longest side); None if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            side = max(image.size)
            if side > max_side:
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                image = image.convert("RGB")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=False)
            if buffer.tell() <= PNG_LIMIT:
                return png_uri(buffer.getvalue()), side
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
            return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), side
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
