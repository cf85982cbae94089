"""Safe file names (no sample id, task name or mode may write outside the run folder) and
file content hashes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str, max_len: int = 80) -> str:
    """A file-name-safe version of ``text``; ids that had to change get a short hash suffix.

    ``"../../x"`` -> ``"x-<hash>"``; ``"../x.png"`` -> ``"x-<hash>.png"`` (the file type
    kept); ``"17_A"`` stays ``"17_A"`` (the published names).
    """
    cleaned = _UNSAFE.sub("_", str(text)).strip("._") or "id"
    if cleaned == text and len(cleaned) <= max_len:
        return cleaned
    digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
    stem, dot, suffix = cleaned.rpartition(".")
    if dot and stem and suffix.isalnum() and len(suffix) <= 5:
        return f"{stem[:max_len]}-{digest}.{suffix}"
    return f"{cleaned[:max_len]}-{digest}"


def inside(root: Path, *parts: str) -> Path:
    """``root / safe parts``, refusing anything that would resolve outside ``root``."""
    path = root.joinpath(*(safe_name(p) if p not in ("", ".") else "_" for p in parts))
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{path} escapes {root}")
    return path


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (judge cache keys, data hashes)."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
