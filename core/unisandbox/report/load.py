"""Read a run folder for reporting: check its files and say exactly what is wrong when not.

A report is often made of a folder someone else produced (a colleague's run, a run that died),
so every problem is a one-line :class:`UserError` naming the file and field, never a
traceback deep inside the writers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, UserError
from ..records import UNDERSTANDING
from ..run.store import JsonlLog, RunStore, read_json, read_records
from .probes import ProbeSection, find_probe_sections

CELL_KEYS = ("accuracy", "n", "n_yes", "n_error", "ci95")


def check_results(results: Any, path: Path | str) -> dict[str, Any]:
    """Validate the shape of a results.json the writers rely on; returns it unchanged."""
    if not isinstance(results, dict):
        raise DataError(path, None, None, "expected a JSON object")
    tasks = results.get("tasks")
    if not isinstance(tasks, dict):
        raise DataError(path, None, "tasks", "missing or not an object")
    modes = results.get("modes", [])
    if not isinstance(modes, list) or not all(isinstance(m, str) for m in modes):
        raise DataError(path, None, "modes", "expected a list of mode names")
    for task, entry in tasks.items():
        where = f"tasks.{task}"
        if not isinstance(entry, dict) or not isinstance(entry.get("levels"), dict):
            raise DataError(path, None, f"{where}.levels", "missing or not an object")
        for level, cells in entry["levels"].items():
            if not isinstance(cells, dict):
                raise DataError(path, None, f"{where}.levels.{level}", "expected an object")
            for mode, cell in cells.items():
                if mode == "gap":
                    continue
                _check_cell(cell, path, f"{where}.levels.{level}.{mode}")
    return results


def _check_cell(cell: Any, path: Path | str, where: str) -> None:
    if not isinstance(cell, dict):
        raise DataError(path, None, where, "expected an object with accuracy, n, ci95")
    missing = [k for k in CELL_KEYS if k not in cell]
    if missing:
        raise DataError(path, None, where, f"missing {', '.join(missing)}")
    acc, ci = cell["accuracy"], cell["ci95"]
    if acc is not None and not isinstance(acc, (int, float)):
        raise DataError(path, None, f"{where}.accuracy", f"expected a number, got {acc!r}")
    if not (isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci)):
        raise DataError(path, None, f"{where}.ci95", f"expected [low, high], got {ci!r}")
    for key in ("n", "n_yes", "n_error"):
        if not isinstance(cell[key], int) or isinstance(cell[key], bool) or cell[key] < 0:
            raise DataError(path, None, f"{where}.{key}", f"expected a count, got {cell[key]!r}")
    # a hand-edited or foreign file can hold numbers no run makes: refused, not reported
    if cell["n_yes"] > cell["n"]:
        raise DataError(path, None, f"{where}.n_yes", f"{cell['n_yes']} right of n={cell['n']}")
    if not 0 <= ci[0] <= ci[1] <= 1:
        raise DataError(path, None, f"{where}.ci95", f"expected 0 <= low <= high <= 1, got {ci!r}")
    if acc is not None and (not 0 <= acc <= 1 or (cell["n"] and abs(acc - cell["n_yes"] / cell["n"]) > 1e-6)):
        raise DataError(path, None, f"{where}.accuracy",
                        f"{acc!r} is not n_yes / n = {cell['n_yes']} / {cell['n']}")
    facets = cell.get("facets", {})
    if not isinstance(facets, dict):
        raise DataError(path, None, f"{where}.facets", "expected an object of facets")
    for name, facet in facets.items():
        if not (isinstance(facet, dict) and isinstance(facet.get("accuracy"), (int, float))
                and isinstance(facet.get("n"), int)):
            raise DataError(path, None, f"{where}.facets.{name}",
                            f"expected {{\"accuracy\": number, \"n\": count}}, got {facet!r}")


@dataclass
class RunData:
    """One run folder as the report sees it."""

    root: Path
    label: str
    config: dict[str, Any]
    results: dict[str, Any]
    #: tasks the configuration lists that are not wholly measured (a run that died), each
    #: with what it lacks
    missing_tasks: list[str] = field(default_factory=list)
    probes: list[ProbeSection] = field(default_factory=list)
    #: an eval is writing the folder now (its lock is held): unfinished, not stopped
    running: bool = False

    @property
    def modes(self) -> list[str]:
        return list(self.results.get("modes", []))

    @property
    def command(self) -> str:
        """The command that made the folder (and resumes it)."""
        return "unisandbox score" if self.config.get("kind") == "score" else "unisandbox eval"

    _records: dict[tuple[str, str, str], dict[str, Any]] | None = field(default=None, repr=False)

    def records(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """The latest samples.jsonl record per (task, mode, id); empty when there is no log.
        Read once (the unfinished-task check and the report's grids share it)."""
        if self._records is None:
            self._records = read_records(JsonlLog(self.root / "samples.jsonl"))
        return self._records

    def image(self, relative: Any) -> Path | None:
        """A record's image path, only if it is a file inside this run folder."""
        if not isinstance(relative, str) or not relative:
            return None
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return None
        return path


def _labels(roots: list[Path]) -> list[str]:
    """Short distinct labels: folder names, widened with parents while two collide."""
    labels = [r.name or str(r) for r in roots]
    depth = 1
    while len(set(labels)) < len(labels) and depth < 6:
        depth += 1
        labels = ["/".join(r.parts[-depth:]) for r in roots]
    return labels


def _measured(entry: Mapping[str, Any] | None) -> bool:
    """Does a task's results entry hold any measured cell? The runner lists every task of the
    run from the start, the ones not reached yet with empty levels."""
    if not entry:
        return False
    return any(isinstance(cell, dict) and (cell.get("n") or cell.get("n_error"))
               for cells in entry.get("levels", {}).values() for key, cell in cells.items()
               if key != "gap")


def load_run(root: Path, label: str | None = None) -> RunData:
    """Load and check one run folder (a folder with config.json and results.json)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    config_path, results_path = root / "config.json", root / "results.json"
    if not config_path.is_file() and (root / "demo.json").is_file():
        raise UserError(_demo_folder(root))
    if not config_path.is_file():
        raise UserError(f"{root} is not a run folder (no config.json); pass a folder written by "
                        "`unisandbox eval` or `unisandbox score`")
    config = read_json(config_path)
    if isinstance(config, dict) and "probe" in config and "run" not in config:
        raise UserError(f"{root} holds a probe, not an eval run: `unisandbox report {root}` shows "
                        f"it as a section, and `unisandbox findings --probes {root}` reads it")
    if not isinstance(config, dict) or not isinstance(config.get("run"), dict):
        raise DataError(config_path, None, "run", "missing or not an object (not a run config)")
    if not results_path.is_file():
        if RunStore(root).busy():
            raise UserError(f"{root} has no results.json yet: its eval is still running its first "
                            "task; report it once a task is done")
        raise UserError(f"{root} has no results.json: the run has not finished its first task; "
                        "resume it with the same `unisandbox eval` command")
    results = check_results(read_json(results_path), results_path)
    run = RunData(root=root, label=label or root.name, config=config, results=results,
                  probes=find_probe_sections(root))
    run.missing_tasks = _unfinished(run)
    run.running = bool(run.missing_tasks) and RunStore(root).busy()
    return run


def _demo_folder(root: Path) -> str:
    """What to do with a ``unisandbox demo`` folder (its demo.json says it is one): it holds a
    report already and its runs under runs/, so the user is pointed at them, not at a dead end."""
    runs = sorted(p for p in (root / "runs").glob("*") if (p / "config.json").is_file())
    where = ", ".join(str(p) for p in runs) if runs else f"{root / 'runs'}/* (none yet)"
    html = root / "report" / "report.html"
    report = (f"its report is {html}" if html.is_file()
              else f"its report will be {html} once the demo has finished")
    return (f"{root} is a demo folder (`unisandbox demo`), not a run folder: {report}; "
            f"its run folders are {where}")


def _unfinished(run: RunData) -> list[str]:
    """The tasks of the run's configuration that are not wholly measured, each with what it
    lacks ("math-2 (normal 8 of 20, think 0 of 20, U 0 of 20)"): an interrupted run's results
    hold the task it was in the middle of, and its figures would read as finished ones.

    An eval run is checked record by record against each task's item count; a score folder
    (its images may be missing for good) only for tasks with nothing measured.
    """
    config = run.config
    # the tasks' own names (a file task is named after its file, not "unisandbox-file")
    identities = config.get("tasks") if isinstance(config.get("tasks"), dict) else {}
    listed = list(identities) or [str(t.get("name")) for t in config["run"].get("tasks", []) if isinstance(t, dict)]
    sizes = {name: (identities.get(name) or {}).get("n") for name in listed}
    if config.get("kind") == "score" or not all(isinstance(n, int) for n in sizes.values()) \
            or not (run.root / "samples.jsonl").is_file():  # a copy without its log: results only
        return [t for t in listed if not _measured(run.results["tasks"].get(t))]
    modes = [str(m) for m in config["run"].get("modes") or []]
    if config["run"].get("understanding", True):
        modes.append(UNDERSTANDING)
    counts = Counter((task, mode) for task, mode, _ in run.records())
    out = []
    for name in listed:
        short = [f"{'U' if mode == UNDERSTANDING else mode} {counts[name, mode]} of {sizes[name]}"
                 for mode in modes if counts[name, mode] < sizes[name]]
        if short:
            out.append(f"{name} ({', '.join(short)})")
    return out


def load_folders(folders: list[Path]) -> tuple[list[RunData], list[ProbeSection]]:
    """Run folders and stand-alone probe folders, in the order given."""
    runs_at, probe_only = [], []
    for folder in folders:
        folder = Path(folder)
        # a probe folder has a config.json of its own, but never a results.json
        if not (folder / "results.json").is_file() and folder.is_dir():
            sections = find_probe_sections(folder)
            if sections:
                probe_only.extend(sections)
                continue
        runs_at.append(folder)
    labels = _labels(runs_at)
    return [load_run(r, label) for r, label in zip(runs_at, labels, strict=True)], probe_only


def iter_levels(levels: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Levels in reading order (numeric ascending, then ``all``); ``all`` is skipped when it
    merely repeats a task's single level."""
    numeric = sorted((k for k in levels if k != "all"), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    for key in numeric:
        yield key, levels[key]
    if "all" in levels and len(numeric) != 1:
        yield "all", levels["all"]
