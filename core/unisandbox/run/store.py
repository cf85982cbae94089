"""The run folder: atomic files, an append-only sample log, images at published names.

Layout::

    config.json                 resolved configuration (written once, checked on resume)
    samples.jsonl               one JSON record per (task, mode, sample), append-only
    results.json                aggregates, rewritten atomically after every task
    judge_cache.jsonl           verdicts keyed by judge identity + image hash + answer
    images/<task>/<mode>/<id>.png
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, DataWarning, UserError
from ..paths import inside

if TYPE_CHECKING:
    from PIL.Image import Image


def _umask_mode() -> int:
    current = os.umask(0)
    os.umask(current)
    return 0o666 & ~current


def differences(old: Any, new: Any, where: str = "", limit: int = 3) -> str:
    """What differs between two JSON values, as "where: old -> new" for the first ``limit``
    leaves, so a refused resume says which option changed, not only which section."""
    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(found) >= limit or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                walk(a.get(key, "(absent)"), b.get(key, "(absent)"), f"{path}.{key}" if path else str(key))
            return
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):  # tasks[0].args.split
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
            return
        found.append(f"{path or 'value'}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}")

    walk(old, new, where)
    return "; ".join(found)


def read_json(path: Path) -> Any:
    """Parse a JSON file of a run folder (config, results, a trainer's bookkeeping); a damaged
    one is a user error naming the file and line, never a traceback."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DataError(path, None, None, "not UTF-8 text: the file is damaged") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, None, f"not valid JSON ({exc.msg})") from None


def read_object(path: Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """A run-folder file that holds one JSON object with the ``required`` keys (a trainer's
    markers and bookkeeping); any other shape is an error naming the file and the field."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise DataError(path, None, None, f"expected a JSON object, got {type(value).__name__}; "
                        "the file is damaged")
    for key in required:
        if key not in value:
            raise DataError(path, None, key, "missing; the file is damaged")
    return value


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside ``path`` to write to; on success it is fsynced and renamed over
    ``path``, so readers see the old file or the new one, never half. The file gets the
    permissions a plain ``open`` would give (mkstemp alone would make it owner-only).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())  # again: some writers (safetensors) replace the file
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_png(path: Path, image: Image) -> None:
    """Save a PIL image atomically as PNG (deterministic bytes for identical pixels)."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    """Records as JSON lines, the one encoding every log and JSONL file of a run uses."""
    return b"".join(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"
                    for r in records)


class JsonlLog:
    """An append-only JSON-lines file that survives being killed mid-write.

    A torn last line (no trailing newline, or not JSON) is cut off when the log is opened
    for appending; a bad line in the middle is real corruption and raises.
    """

    def __init__(self, path: Path, mend: str = "mend or delete that line") -> None:
        self.path = path
        self.mend = mend  # what a user does about a corrupt line in the middle

    def read(self) -> Iterator[dict[str, Any]]:
        """Every complete record; a corrupt one in the middle is an error naming its line."""
        for _, record in self.numbered():
            yield record

    def numbered(self, on_corrupt: Callable[[int], Any] | None = None) -> Iterator[tuple[int, Any]]:
        """(line number, record) of every complete record; a corrupt one in the middle is an
        error naming its line, or, for a log that is only a cache, reported to
        ``on_corrupt(line)`` and skipped."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # the last piece is "" for a clean file, a torn line otherwise
        for number, raw in enumerate(complete, 1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if number == len(complete):  # torn final write that did end with a newline
                    return
                if on_corrupt is not None:
                    on_corrupt(number)
                    continue
                raise UserError(f"{self.path}:{number}: corrupt record ({getattr(exc, 'msg', exc)}); "
                                f"{self.mend}") from None

    def repair(self) -> None:
        """Cut a torn final record so appends start on a clean line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = data[: data.rfind(b"\n") + 1]
        if keep:
            last_start = keep.rfind(b"\n", 0, len(keep) - 1) + 1
            try:
                json.loads(keep[last_start:])
            except (json.JSONDecodeError, UnicodeDecodeError):  # torn inside a character too
                keep = keep[:last_start]
        if len(keep) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(keep))

    def keep(self, wanted: Callable[[dict[str, Any]], bool]) -> int:
        """Rewrite the log (atomically) with the records ``wanted`` accepts, when any is not;
        how many records there were. For a resumed run whose logged steps after its last saved
        state are taken again; an append-only log otherwise never loses a line."""
        records = list(self.read())
        kept = [r for r in records if wanted(r)]
        if len(kept) != len(records):
            atomic_write_bytes(self.path, jsonl_bytes(kept))
        return len(records)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records with one write and an fsync, so a batch lands whole or is torn once."""
        payload = jsonl_bytes(records)
        if not payload:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())


@contextmanager
def exclusive(lock_path: Path, message: str, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` for the block: one process at a time. Taken
    already: ``wait`` prints ``message`` and waits for it, else ``message`` is the UserError
    raised. Where ``fcntl`` is missing (not POSIX), no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        locked = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise UserError(message) from None
            print(message, file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as exc:  # a filesystem without locks (some NFS, Lustre mounts)
            warnings.warn(f"{lock_path}: cannot lock ({exc.strerror or exc}); going on without "
                          "the lock: do not run two processes on this folder at once",
                          DataWarning, stacklevel=3)
            locked = False
        try:
            yield  # outside the except: an error of the block is not chained to the lock's
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


#: what to do about a corrupt record in the middle of a run's samples.jsonl
SAMPLES_MEND = ("mend or delete that line and run the same command again (a deleted record's "
                "sample is drawn and judged again, with the same seed)")


class RunStore:
    """Paths and writes for one run folder."""

    #: held by the process writing the folder (``eval``): a second writer is refused
    LOCK_NAME = ".writing.lock"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.samples = JsonlLog(self.root / "samples.jsonl", SAMPLES_MEND)
        self.config_path = self.root / "config.json"
        self.results_path = self.root / "results.json"
        self.judge_cache_path = self.root / "judge_cache.jsonl"

    def image_path(self, task: str, mode: str, file_name: str) -> Path:
        return inside(self.root, "images", task, mode, file_name)

    def image_dir(self, task: str, mode: str) -> Path:
        return inside(self.root, "images", task, mode)

    def writing(self) -> AbstractContextManager[None]:
        """The writer's lock, for the length of a run (a second ``eval`` on the folder, say
        to resume a run that is still going, would append beside it)."""
        return exclusive(self.root / self.LOCK_NAME, f"{self.root} is being written by another "
                         "process (an eval still running?); wait for it to finish, or stop it "
                         "first", wait=False)

    def busy(self) -> bool:
        """Whether a process holds the writer's lock now (a run still going). Read-only: a
        shared lock tried and let go at once, on a file opened for reading (a folder the
        reader may not write); no lock to be had (a filesystem without them) is not busy."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return False
        try:
            with open(self.root / self.LOCK_NAME) as handle:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
        except BlockingIOError:
            return True
        except OSError:  # no lock file (no run wrote here since), or no locks on this filesystem
            return False
        return False

    def remove_if_empty(self) -> None:
        """Remove the folder when it holds nothing but the writer's lock (a run refused before
        it wrote anything)."""
        with suppress(OSError):  # never in place of the error that stopped the run
            if self.root.is_dir() and {p.name for p in self.root.iterdir()} <= {self.LOCK_NAME}:
                (self.root / self.LOCK_NAME).unlink(missing_ok=True)
                self.root.rmdir()

    def remove_unstarted(self, folder_too: bool) -> None:
        """Undo the start of a run that failed before it recorded any sample (a model that
        would not load): its config.json would make every later command call it unfinished.
        ``folder_too``: the run made the folder, so an empty one goes as well."""
        with suppress(OSError, UserError):  # never in place of the error that stopped the run
            images = self.root / "images"
            drawn = images.is_dir() and any(p.is_file() for p in images.rglob("*.png"))
            # images already saved (stopped in its first batch): kept, with the config that
            # lets the same command resume them
            if not drawn and next(iter(self.samples.read()), None) is None:
                self.samples.path.unlink(missing_ok=True)
                self.config_path.unlink(missing_ok=True)
                self.results_path.unlink(missing_ok=True)
        if folder_too:
            self.remove_if_empty()

    def remove_stale_temporaries(self) -> int:
        """Delete the half-written files (``.NAME.XXXX.tmp``) a killed writer left; only the
        process holding the writer's lock calls this. How many there were."""
        # the run's own files only: a score or probe folder inside it may be writing right now
        stale = [p for p in (*self.root.glob(".*.tmp"), *(self.root / "images").rglob(".*.tmp"))
                 if p.is_file()]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def recorded_path(self, relative: str) -> Path:
        """The file a record's ``image`` names, as it was saved (a name already made safe is
        not made safe again: a long one would get a second hash and never be found)."""
        path = self.root / relative
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise UserError(f"{self.root}: a record names {relative!r}, outside the run folder")
        return path

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def read_config(self) -> dict[str, Any] | None:
        if not self.config_path.exists():
            return None
        return read_object(self.config_path)

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_json(self.results_path, results)

    def read_results(self) -> dict[str, Any]:
        if not self.results_path.exists():
            raise UserError(f"{self.root} has no results.json (is it a finished run folder?)")
        return json.loads(self.results_path.read_text())

    def records(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """The latest record per (task, mode, id)."""
        return read_records(self.samples)


def read_records(log: JsonlLog) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The latest record per (task, mode, id) of a sample log, each checked for the fields the
    engine and the report read: a hand-edited or foreign log fails naming its line and field,
    not with a KeyError at aggregation nor as a silent "yes" in a report."""
    from ..records import VERDICTS

    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for number, record in log.numbered():
        if not isinstance(record, dict) or not all(k in record for k in ("task", "mode", "id")):
            raise DataError(log.path, number, "task/mode/id", "record lacks its key fields")
        image = record.get("image")
        if image is not None and (not isinstance(image, str) or not image or Path(image).is_absolute()
                                  or ".." in Path(image).parts):
            raise DataError(log.path, number, "image", f"must be a path inside the run folder, got {image!r}")
        if record.get("verdict") not in VERDICTS:
            raise DataError(log.path, number, "verdict",
                            f"must be one of {', '.join(VERDICTS)}, got {record.get('verdict')!r}")
        out[(str(record["task"]), str(record["mode"]), str(record["id"]))] = record
    return out
