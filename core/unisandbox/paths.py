"""Safe file names (no sample id, task name or mode may write outside the run folder) and
file content hashes."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import BinaryIO

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
    for name in (str(text), cleaned):  # the type as given ("..png" keeps it), else as cleaned
        stem, dot, suffix = name.rpartition(".")
        if dot and suffix.isalnum() and suffix.isascii() and len(suffix) <= 5:
            stem = _UNSAFE.sub("_", stem).strip("._") or "id"
            return f"{stem[:max_len]}-{digest}.{suffix}"
    return f"{cleaned[:max_len]}-{digest}"


def inside(root: Path, *parts: str) -> Path:
    """``root / safe parts``, refusing anything that would resolve outside ``root``."""
    path = root.joinpath(*(safe_name(p) if p not in ("", ".") else "_" for p in parts))
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{path} escapes {root}")
    return path


#: files up to this size are hashed whole by ``weights_fingerprint``; larger ones in part
WHOLE_HASH_BYTES = 64 << 20


def weights_fingerprint(path: Path, block: int = 1 << 12, samples: int = 64) -> str:
    """A fingerprint of a weights file that tells two checkpoints apart in about a second,
    whatever their size, for a model's ``identity()`` (a run resumed on other weights is
    refused). Up to ``WHOLE_HASH_BYTES``: the whole file's sha256. Larger: for a safetensors
    file, its size, its whole header (every tensor's name, dtype, shape, offsets) and the first
    and last ``block`` bytes of every tensor's data, so a fine-tune that changed any tensor (a
    few layers, a connector, new rows of an embedding) changes it; for another file (or a
    damaged header), ``samples`` blocks spread through it.
    A copy of the same file (another folder, another mtime) has the same fingerprint."""
    path = Path(path)
    size = path.stat().st_size
    if size <= WHOLE_HASH_BYTES:
        return "sha256:" + file_sha256(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        starts = _safetensors_starts(handle, size)
        if starts is not None:
            header_end, offsets = starts
            handle.seek(0)
            h.update(handle.read(header_end))
            for begin, end in offsets:  # a tensor's head and tail (new rows land at the end)
                handle.seek(header_end + begin)
                h.update(handle.read(min(block, end - begin)))
                handle.seek(header_end + max(begin, end - block))
                h.update(handle.read(min(block, end - begin)))
            return "safetensors-ends:" + h.hexdigest()
        for i in range(samples + 1):
            handle.seek(0 if i == 0 else (size - block) * i // samples)
            h.update(handle.read(block))
    return f"sampled{samples}x{block}:" + h.hexdigest()


def _safetensors_starts(handle: BinaryIO, size: int) -> tuple[int, list[tuple[int, int]]] | None:
    """Where a safetensors file's data begins and each tensor's (begin, end) in it, or None
    when the file is not one."""
    raw = handle.read(8)
    length = int.from_bytes(raw, "little") if len(raw) == 8 else 0
    if not 0 < length <= min(size - 8, 100_000_000):
        return None
    try:
        header = json.loads(handle.read(length))
        offsets = sorted({(int(t["data_offsets"][0]), int(t["data_offsets"][1]))
                          for k, t in header.items() if k != "__metadata__"})
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    if not all(0 <= begin <= end <= size - 8 - length for begin, end in offsets):
        return None  # a damaged header: the file is sampled instead
    return 8 + length, offsets


def jsonl_files(folder: Path) -> list[Path]:
    """The JSON-lines files of a folder, sorted (``.jsonl`` in any case: ``c.JSONL`` too)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".jsonl" and p.is_file())


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (judge cache keys, data hashes)."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
