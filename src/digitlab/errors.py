"""The errors a user can cause: each ends a command with one line and a non-zero exit."""
from __future__ import annotations

from digitlab.checkpoint import CheckpointError
from digitlab.config import ConfigError
from digitlab.idx import DataError
from digitlab.runs import RunError
from digitlab.train import TrainingError

USER_ERRORS = (ConfigError, DataError, RunError, CheckpointError, TrainingError)


def exit_code(error: BaseException) -> int:
    return getattr(error, "exit_code", 2)
