"""digitlab.errors: one base class; each kind carries the exit code the CLI ends with."""

from __future__ import annotations

import signal

import pytest

from digitlab.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DigitlabError,
    Interrupted,
    RunError,
    TrainingError,
)


@pytest.mark.parametrize("kind", [ConfigError, DataError, RunError, CheckpointError])
def test_user_errors_exit_2(kind):
    error = kind("bad")
    assert isinstance(error, DigitlabError) and isinstance(error, ValueError)
    assert (error.exit_code, error.http_status) == (2, 400)


def test_training_error_exits_1():
    error = TrainingError("diverged")
    assert isinstance(error, DigitlabError)
    assert (error.exit_code, error.http_status) == (1, 500)


def test_interrupted_exits_128_plus_the_signal():
    assert Interrupted("stopped", "SIGTERM").exit_code == 128 + signal.SIGTERM
    assert isinstance(Interrupted("stopped", "SIGTERM"), TrainingError)


def test_interrupted_by_another_process_exits_as_ctrl_c():
    assert Interrupted("stopped", None).exit_code == 130


def test_first_line_keeps_one_line_of_another_librarys_error():
    from digitlab.errors import first_line

    assert first_line(ValueError("bad header\nat byte 12\n")) == "bad header"
    assert first_line(OSError()) == "OSError"
    assert first_line(RuntimeError("x" * 500), 300) == "x" * 300
