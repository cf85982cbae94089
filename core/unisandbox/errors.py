"""User-facing errors: the CLI prints these as one clear message and exits 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a config file, a CLI value, a data file, an unknown name.

    Say where (file, line, field) and what was expected, in one or two sentences.
    """


class DataError(UserError):
    """A data file is malformed. Carries the file, line and field it found the problem at."""

    def __init__(self, path: object, line: int | None, field: str | None, message: str) -> None:
        self.path, self.line, self.field = path, line, field
        where = str(path) + (f":{line}" if line is not None else "")
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")


class DataWarning(UserWarning):
    """A data file has a known defect that still lets it load (e.g. the published mapping2
    ID 36); the CLI prints it as one ``warning:`` line."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``scancel``, ``kill``), raised where Ctrl-C would be,
    so a run stops the same way: what it finished is kept, a trainer saves its state."""


def sigterm_stops_like_ctrl_c() -> bool:
    """Whether SIGTERM is turned into :class:`Terminated`: not under torchrun, whose agent
    stops the other ranks with SIGTERM when one fails (a rank waiting in a collective would
    not raise until the agent's SIGKILL, seconds later)."""
    import os

    return "TORCHELASTIC_RUN_ID" not in os.environ
