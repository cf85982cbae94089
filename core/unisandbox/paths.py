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


#: files up to this size are hashed whole by ``weights_fingerprint``; larger ones are sampled
WHOLE_HASH_BYTES = 64 << 20


def weights_fingerprint(path: Path, samples: int = 64, block: int = 1 << 16) -> str:
    """A fingerprint of a weights file that tells two checkpoints apart in well under a
    second, whatever their size: the whole file up to ``WHOLE_HASH_BYTES``, else its size, its
    first 64 KiB (a safetensors header: names, shapes, dtypes) and ``samples`` blocks spread
    evenly through it. Two trainings of one architecture differ in every block; a copy of the
    same file (another folder, another mtime) has the same fingerprint. For a model's
    ``identity()``, so that a run resumed on other weights is refused."""
    path = Path(path)
    size = path.stat().st_size
    if size <= WHOLE_HASH_BYTES:
        return "sha256:" + file_sha256(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        for i in range(samples + 1):
            handle.seek(0 if i == 0 else (size - block) * i // samples)
            h.update(handle.read(block))
    return f"sampled{samples}x{block}:" + h.hexdigest()


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
