"""The trainer protocol: a model and data in, a checkpoint folder out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from .model import Model


@attrs.frozen
class TrainResult:
    """Where the new checkpoint is and what the trainer measured along the way."""

    checkpoint: Path
    metrics: dict[str, Any] = attrs.field(factory=dict)


class Trainer:
    """Base class of every trainer (see PLUGINS.md, "register_trainers").

    ``train`` writes everything under ``out_dir`` (checkpoints as model folders, logs) and
    resumes from what is already there when run again on the same folder.
    """

    def train(self, model: Model, out_dir: Path) -> TrainResult:
        raise NotImplementedError
