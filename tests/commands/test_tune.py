"""`digitlab tune` through digitlab.cli.main([...]): a search-only worker (--no-retrain) prints the command that
retrains the best trial, and the study records the command that made it, both from the argv main was given (not
sys.argv). The search itself is tested in tests/tune/."""

from __future__ import annotations

import pytest

from digitlab.store.files import read_json
from digitlab.tune import STUDY_FILE
from helpers import run_cli

pytest.importorskip("optuna")


def test_no_retrain_hints_at_the_same_command_with_retrain_only(capsys, monkeypatch, session_data_dir, tmp_path):
    monkeypatch.setattr("sys.argv", ["/usr/bin/pytest", "-q", "tests/commands"])  # not what main is given
    study = tmp_path / "study"
    argv = [
        "tune", "--model", "mlp", "--trials", "0", "--epochs", "1", "--val-size", "100", "--data-dir",
        str(session_data_dir), "--out", str(study), "--threads", "1", "--device", "cpu", "--no-retrain",
    ]  # fmt: skip
    code, out, err = run_cli(capsys, argv)
    assert (code, err) == (0, "")
    again = " ".join(["digitlab", *argv[:-1], "--retrain-only"])
    assert out.splitlines()[-1] == f"to retrain the best trial once every worker has finished: {again}"
    assert read_json(study / STUDY_FILE)["command"] == " ".join(["digitlab", *argv])
