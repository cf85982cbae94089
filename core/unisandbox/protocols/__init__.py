"""The four protocols a plugin implements: Model, Task, Judge, Trainer."""

from __future__ import annotations

from .analysis import AnalysisTask
from .judge import Judge
from .model import (
           GENERATION_PARTS,
           WEIGHTS_FINGERPRINT,
           CapabilityError,
           Model,
           QueryStates,
           resume_identities,
)
from .task import Task
from .trainer import Trainer, TrainResult

__all__ = ["GENERATION_PARTS", "WEIGHTS_FINGERPRINT", "AnalysisTask", "CapabilityError", "Judge", "Model",
           "QueryStates", "Task", "TrainResult", "Trainer", "resume_identities"]
