"""The analysis-task protocol: probes that read a model's internals instead of judging images.

A probe is a :class:`Task` registered with ``TaskSpec(..., analysis=True)``. ``unisandbox eval``
refuses it; ``unisandbox probe`` builds it and the model and calls :meth:`AnalysisTask.analyze`,
which writes its files into the output folder. The report includes every probe folder's
``section.md`` / ``section.html`` as they are, so a probe owns its own presentation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..records import Sample
from .model import Model
from .task import Task

#: Every number the probe measured (the machine-readable result).
RESULT_FILE = "probe.json"
#: A Markdown section (figures linked by relative path) for ``report.md``.
SECTION_MD = "section.md"
#: A self-contained HTML fragment (figures as data: URIs) for ``report.html``.
SECTION_HTML = "section.html"

#: ``progress(description, done, total)``: called as work completes; ``done`` counts up to
#: ``total`` for one description (e.g. ``"math-1 think"``).
Progress = Callable[[str, int, int], None]


def no_progress(_description: str, _done: int, _total: int) -> None:
    """A :data:`Progress` that shows nothing (tests, library use)."""


class AnalysisTask(Task):
    """Base class of probes (see PLUGINS.md, "register_tasks").

    ``analyze`` gets the model (``None`` when the spec requires no capability, e.g. a probe
    that compares two earlier probe folders), the generation modes to probe, and an existing
    empty-or-reusable folder. It writes :data:`RESULT_FILE`, :data:`SECTION_MD`,
    :data:`SECTION_HTML` and any figures there, and returns a small JSON-able summary; a
    ``"table": {"headers": [...], "rows": [[...], ...]}`` entry is printed by the CLI.
    """

    family = "probe"

    def samples(self) -> Sequence[Sample]:
        """The items the probe reads (empty for probes that only read earlier results)."""
        return ()

    def analyze(self, model: Model | None, modes: Sequence[str], out_dir: Path,
                progress: Progress = no_progress) -> dict[str, Any]:
        raise NotImplementedError
