"""Progress bars: redrawn on a terminal, plain lines at an interval in a log file."""

from __future__ import annotations

import io

import pytest
from unisandbox import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_bar(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, total: int, **kwargs) -> str:
    monkeypatch.setattr("sys.stderr", stream)
    bar = progress.bar(total, "stage III", "step", **kwargs)
    for step in range(total - kwargs.get("initial", 0)):
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (step + 1):.3f}", refresh=False)
    bar.close()
    return stream.getvalue()


def test_a_log_gets_a_first_and_a_last_line_and_no_carriage_returns(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 3600.0)
    text = run_bar(monkeypatch, io.StringIO(), 500, initial=100)
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n")
    assert len(lines) == 2  # the interval is an hour: the start and the end only
    assert lines[0].startswith("stage III: 100/500 step")
    assert lines[1].startswith("stage III: 500/500 step") and "loss=0.003" in lines[1]


def test_the_log_interval_bounds_forced_redraws_too(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    bar = progress.bar(10, "stage III", "step")
    assert bar.mininterval == progress.LOG_INTERVAL_S  # not tqdm's 10 s monitor redraws,
    assert bar.maxinterval == 2 * progress.LOG_INTERVAL_S  # nor a second line beside a due one
    bar.close()


def test_a_forced_redraw_counts_as_the_due_line(monkeypatch):
    """tqdm's monitor redraws a bar whose step outlasts maxinterval; the next update must not
    print a second line right after it."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    bar = progress.bar(10, "stage III", "step")
    bar.last_print_t -= 10 * progress.LOG_INTERVAL_S  # a long step: the monitor is due
    bar.refresh()  # what the monitor thread does
    bar.update(1)  # the step ends a moment later
    assert len(stream.getvalue().splitlines()) == 2  # the first line and the forced one
    bar.close()


def test_a_log_gets_a_line_per_interval(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    lines = run_bar(monkeypatch, io.StringIO(), 20).splitlines()
    assert len(lines) > 2 and all(line.startswith("stage III: ") for line in lines)


def test_a_terminal_gets_a_bar_redrawn_in_place(monkeypatch):
    text = run_bar(monkeypatch, Terminal(), 20)
    assert "\r" in text and "stage III" in text


@pytest.mark.parametrize(("total", "enabled"), [(0, True), (20, False)])
def test_no_output_when_disabled_or_nothing_to_count(monkeypatch, total, enabled):
    assert run_bar(monkeypatch, io.StringIO(), total, enabled=enabled) == ""


def test_a_notebook_keeps_its_live_bar(monkeypatch):
    import tqdm.auto
    import tqdm.std

    class Notebook(tqdm.std.tqdm):  # stands in for tqdm.notebook's widget class
        pass

    Notebook.__module__ = "tqdm.notebook"
    monkeypatch.setattr(tqdm.auto, "tqdm", Notebook)
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 3600.0)
    text = run_bar(monkeypatch, io.StringIO(), 20)
    assert "\r" in text  # not the log form, whose interval would freeze the widget for an hour


def test_bars_open_at_once_leave_no_cursor_codes_in_a_log(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    first, second = progress.bar(3, "lens", "sample"), progress.bar(2, "compare", "sample")
    for bar in (first, second):
        bar.update(bar.total)
    first.close()
    second.close()
    text = stream.getvalue()
    assert "\x1b" not in text and "lens: 3/3" in text and "compare: 2/2" in text
