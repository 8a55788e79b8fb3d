"""The errors a user can cause. Each ends a command with one line and a non-zero exit.

Every kind derives from DigitlabError and carries its exit code (and the HTTP status a server
answers with), so the CLI catches one class and nothing else needs to know the list. `first_line` cuts
another library's error down to what fits in such a message.
"""

from __future__ import annotations

import signal


class DigitlabError(Exception):
    """Something a user can mend; the message says what was wrong, where, and what to do."""

    exit_code = 2  # as argparse exits for a bad flag
    http_status = 400


class ConfigError(DigitlabError, ValueError):
    """A setting that is invalid."""


class DataError(DigitlabError, ValueError):
    """Data that cannot be used; the message names the file."""


class RunError(DigitlabError, ValueError):
    """A run directory that cannot be used as asked."""


class CheckpointError(DigitlabError, ValueError):
    """A checkpoint or weights file that cannot be used."""


class TrainingError(DigitlabError, RuntimeError):
    """Training stopped: divergence or a signal."""

    exit_code = 1
    http_status = 500


class Interrupted(TrainingError):
    """Stopped by Ctrl-C or SIGTERM after writing a checkpoint; exits 128 + the signal's number."""

    def __init__(self, message: str, signal_name: str | None):
        super().__init__(message)
        self.exit_code = 128 + (signal.Signals[signal_name].value if signal_name else signal.SIGINT.value)


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of another library's error (its class name when it says nothing), at most `limit`
    characters: enough to say what went wrong inside one line of ours."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:limit]
