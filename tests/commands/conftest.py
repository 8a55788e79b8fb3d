"""Fixtures of the subcommands' tests: a copy of the session's finished run that a test may damage."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the session's finished run that a test may damage."""
    destination = tmp_path / "run-copy"
    shutil.copytree(trained_run, destination)
    return destination
