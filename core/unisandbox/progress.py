"""Progress bars for long work, readable on a terminal and in a log file.

On a terminal a bar redraws in place. Redirected to a file (nohup, SLURM, CI) the same bar
would be one line of carriage returns rewritten after every step, megabytes an hour that
``tail`` cannot read; there it prints a plain line at most every ``LOG_INTERVAL_S`` seconds
and one at the end, so a log says how far a run got and how fast.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any, TextIO

LOG_INTERVAL_S = 30.0
_CURSOR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]{postfix}"


class _Lines:
    """A stream for tqdm that writes each redraw of the status as a line of its own."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        # tqdm moves the cursor between bars open at once (ESC [ A): no place in a log file
        line = _CURSOR.sub("", text).replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def bar(total: int, desc: str, unit: str, enabled: bool = True, initial: int = 0) -> Any:
    """A tqdm bar on stderr: redrawn on a terminal (a widget in a notebook), a line every half
    minute in a log.

    Disabled when ``enabled`` is false or there is nothing to count. Use ``set_postfix(...,
    refresh=False)`` for figures that change every step, so a log gets them with the next line
    rather than a line for each."""
    from tqdm.auto import tqdm

    stream = sys.stderr
    common: dict[str, Any] = {"total": total, "initial": initial, "desc": desc, "unit": unit,
                              "disable": not enabled or total == 0}
    notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)  # draws a widget
    if stream.isatty() or notebook:
        return tqdm(**common, file=stream, dynamic_ncols=True, leave=False)
    # tqdm's monitor thread forces a redraw after maxinterval (10 s by default) without one;
    # at twice the interval it only speaks when a step outlasts it, never beside a due line
    return _log_bar_class()(**common, file=_Lines(stream), mininterval=LOG_INTERVAL_S,
                            maxinterval=2 * LOG_INTERVAL_S, leave=True, bar_format=_LOG_FORMAT)


@functools.cache  # one class: tqdm keeps a monitor thread per class
def _log_bar_class() -> type:
    """tqdm whose forced redraws count as printed lines: the monitor thread's redraw of a
    long step left the last print time alone, so the next update printed again at once (two
    lines two seconds apart in a log)."""
    from tqdm.std import tqdm

    class LogBar(tqdm):  # type: ignore[misc]
        def refresh(self, nolock: bool = False, lock_args: Any = None) -> Any:
            shown = super().refresh(nolock=nolock, lock_args=lock_args)
            if shown:
                self.last_print_t, self.last_print_n = self._time(), self.n
            return shown

    return LogBar
