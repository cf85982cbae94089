"""Entry point: ``unisandbox <noun> <verb>``. User errors print one line and exit 2."""

from __future__ import annotations

import itertools
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

import click

from .. import __version__
from ..errors import DataWarning, Terminated, UserError, sigterm_stops_like_ctrl_c
from . import data, demo, evaluate, judges, listing, probe, report, train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="unisandbox")
def cli() -> None:
    """Does a unified model's understanding inform its generation?

    Evaluate a model on leak-free tasks in normal and think mode, measure its understanding
    (U) on the same items, and see the gap:

    \b
      unisandbox eval --model glyph-oracle --task math-1 --task-arg world=glyph \\
          --judge glyph --out runs/oracle
      unisandbox report runs/oracle

    \b
    Discover what is installed:  unisandbox plugins list / models list / tasks list
    The whole sandbox study:     unisandbox demo     (or `make demo`)
    """


cli.add_command(listing.plugins)
for command in listing.LIST_GROUPS:
    cli.add_command(command)
cli.add_command(judges.judges)
cli.add_command(evaluate.eval_command)
cli.add_command(evaluate.score)
cli.add_command(train.train)
cli.add_command(data.data)
cli.add_command(probe.probe)
cli.add_command(report.report)
cli.add_command(report.compare)
cli.add_command(report.findings)

cli.add_command(demo.demo)

#: eval, score, train and demo keep what they finished (a probe is computed again)
INTERRUPTED = ("Interrupted. Run the same command again: eval, score, train and demo continue "
               "where they stopped.")


def _close_bars() -> None:
    """Close the progress bars an interrupt left open, so their last line comes before the
    message saying how to continue, not after it."""
    tqdm = sys.modules.get("tqdm.std")
    if tqdm is None:  # nothing showed progress
        return
    for instance in list(getattr(tqdm.tqdm, "_instances", ())):
        with suppress(Exception):  # a bar half torn down already
            instance.close()


@contextmanager
def _plain_data_warnings() -> Iterator[None]:
    """A data file's known defect (the published mapping2 ID 36) is one ``warning:`` line on
    stderr, not Python's two-line warning with a source location."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if issubclass(category, DataWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


#: the options that name a component, and the component kind each names
_COMPONENT_OPTIONS = {"--model": "model", "--task": "task", "--judge": "judge"}


def _component_argument_hint(option: str, argv: list[str]) -> str:
    """For an unknown ``--no-filter`` that is an argument of a component the command line names
    (a trainer's ``no_filter``), say how to pass it: ``--train-arg no_filter=true``; a task
    argument that only some of the run's tasks take, as ``--task-arg TASK:key=...``."""
    from ..factories import ARG_FLAGS
    from .listing import component_arguments

    key = option.lstrip("-").replace("-", "_")
    pairs = [*itertools.pairwise(argv), *(tuple(a.split("=", 1)) for a in argv if "=" in a)]
    named = [(_COMPONENT_OPTIONS[flag], value) for flag, value in pairs if flag in _COMPONENT_OPTIONS]
    if "train" in argv and argv.index("train") + 1 < len(argv):
        named.append(("trainer", argv[argv.index("train") + 1]))
    for flag, value in pairs:
        if flag == "--task-arg" and value.startswith("task="):  # a probe's base tasks
            named += [("task", t.strip()) for t in value[5:].split(",") if t.strip()]
        if flag == "--config" and not any(kind == "task" for kind, _ in named):  # a run.toml's
            with suppress(Exception):  # a file the command itself will say is wrong
                from ..run.config import load_toml

                named += [("task", t.name) for t in load_toml(Path(value)).get("tasks", [])]
    value = "true" if option.startswith("--no-") else "VALUE"
    takes: dict[tuple[str, str], bool] = {}
    for kind, name in dict.fromkeys(named):
        try:
            takes[kind, name] = key in {a["name"] for a in component_arguments(kind, name)}
        except Exception:  # not a registered name: the command's own error says so later
            continue
    from ..registry import get_registry

    probes = {name for (kind, name) in takes if kind == "task" and get_registry().task(name).analysis}
    takes = {k: v for k, v in takes.items() if k[1] not in probes}  # a probe passes on to its tasks
    tasks = [name for (kind, name) in takes if kind == "task"]
    only_some = not all(takes["task", name] for name in tasks)
    found = [f"of {kind} {name!r}: {ARG_FLAGS[kind]} "
             f"{f'{name}:' if kind == 'task' and only_some else ''}{key}={value}"
             for (kind, name), has in takes.items() if has]
    return f"It is an argument {'; '.join(found)}." if found else ""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def run_command(group: click.Command, argv: list[str] | None, prog_name: str) -> int:
    """Run a click command the unisandbox way: user errors print one line and exit 2, no
    traceback (0 ok, 1 failure, 2 user error, 130 interrupted, 143 terminated: SIGTERM stops a
    command as Ctrl-C does). Plugins' own CLIs use it too."""
    on_main = threading.current_thread() is threading.main_thread() and sigterm_stops_like_ctrl_c()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main else None
    try:
        return _run(group, argv, prog_name)
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)


def _run(group: click.Command, argv: list[str] | None, prog_name: str) -> int:
    try:
        with _plain_data_warnings():
            result = group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort as exc:
        _close_bars()
        click.echo(INTERRUPTED, err=True)
        return 143 if isinstance(exc.__context__, Terminated) else 130
    except click.ClickException as exc:
        if isinstance(exc, click.NoSuchOption):
            hint = _component_argument_hint(exc.option_name, argv if argv is not None else sys.argv[1:])
            if hint:
                exc.message, exc.possibilities = f"{exc.message} {hint}", None
        exc.show()
        return exc.exit_code
    except UserError as exc:
        click.echo(f"Error: {exc}", err=True)
        return 2
    except KeyboardInterrupt as exc:
        _close_bars()
        click.echo(INTERRUPTED, err=True)
        return 143 if isinstance(exc, Terminated) else 130
    except OSError as exc:
        if exc.filename is None:  # not a file the user named: a bug or the network, shown whole
            raise
        click.echo(f"Error: {exc.filename}: {exc.strerror or exc}", err=True)
        return 2
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    """The ``unisandbox`` console script."""
    return run_command(cli, argv, "unisandbox")


if __name__ == "__main__":
    sys.exit(main())
