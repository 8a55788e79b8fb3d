"""`digitlab evaluate RUN_DIR` end to end through digitlab.cli.main([...]): accuracy and the confusion matrix as
the training run measured them, and runs or data it cannot use (one line on stderr, a non-zero exit code): no
run, a damaged one, another image size, more classes, another known dataset."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest

from digitlab.data import known
from digitlab.inference.calibration import Calibration, write_calibration
from digitlab.store import rundir
from helpers import NAMES, TINY, assert_user_error, run_cli, write_dataset

# --- the happy path ----------------------------------------------------------------------------------


def test_evaluate_prints_accuracy_and_the_confusion_matrix(capsys, run_copy, session_data_dir):
    # evaluate writes evaluation/ into the run: a copy, so that the shared run stays as it was trained
    code, out, err = run_cli(capsys, ["evaluate", run_copy, "--data-dir", session_data_dir])
    assert (code, err) == (0, "")
    assert "test accuracy" in out and "(100 images)" in out
    assert "per-class accuracy" in out and "confusion matrix" in out
    matrix = [line.split() for line in out.splitlines()[-10:]]
    assert [int(row[0]) for row in matrix] == list(range(10))
    assert sum(int(v) for row in matrix for v in row[1:]) == 100


def test_evaluate_agrees_with_the_training_run(capsys, run_copy, session_data_dir):
    _, out, _ = run_cli(capsys, ["evaluate", run_copy, "--data-dir", session_data_dir])
    final = json.loads((run_copy / rundir.RESULT).read_text())["final"]
    assert f"test accuracy {final['test/acc']:.2%}" in out


def test_evaluate_reports_the_calibration_error_and_draws_the_reliability_diagram(capsys, run_copy, session_data_dir):
    # Uncalibrated first: the error at T 1, a hint to calibrate, and the diagram.
    code, out, err = run_cli(capsys, ["evaluate", run_copy, "--data-dir", session_data_dir])
    assert (code, err) == (0, "")
    assert "expected calibration error" in out and "uncalibrated (T = 1" in out and "digitlab calibrate" in out
    figure = run_copy / "evaluation" / "reliability.png"
    assert figure.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and str(figure) in out
    plain = json.loads((run_copy / "evaluation" / "evaluation.json").read_text())["calibration"]
    assert plain["calibrated"] is False and plain["temperature"] == 1.0 and plain["ece"] == plain["ece_uncalibrated"]
    # With a calibration of the run's weights: the error at its temperature beside the one at T 1.
    weights = run_copy / "model.safetensors"
    fitted = Calibration(
        temperature=3.0, reject_below=0.5, images=60, weights=weights.name,
        weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
    )  # fmt: skip
    write_calibration(run_copy, fitted)
    _, out, _ = run_cli(capsys, ["evaluate", run_copy, "--data-dir", session_data_dir, "--json"])
    record = json.loads(out)
    calibration = record["calibration"]
    assert calibration["calibrated"] is True and calibration["temperature"] == 3.0
    assert calibration["ece_uncalibrated"] == plain["ece_uncalibrated"] != calibration["ece"]
    assert 0 <= calibration["rejected"] <= 1 and calibration["reject_below"] == 0.5
    assert record["files"]["reliability"] == str(figure)
    assert record["accuracy"] == pytest.approx(json.loads((run_copy / rundir.RESULT).read_text())["final"]["test/acc"])
    _, out, _ = run_cli(capsys, ["evaluate", run_copy, "--data-dir", session_data_dir])
    assert "at the run's temperature 3 (fitted on 60 validation digits)" in out and "'not a digit' below" in out


def test_evaluate_a_run_with_a_damaged_calibration(capsys, run_copy, session_data_dir):
    (run_copy / "calibration.json").write_text("{")
    assert_user_error(capsys, ["evaluate", run_copy, "--data-dir", session_data_dir], "calibration.json is damaged")


# --- bad input: one line, non-zero exit, no traceback ------------------------------------------------


def test_evaluate_non_run_dir(capsys, data_dir, tmp_path):
    assert_user_error(capsys, ["evaluate", tmp_path, "--data-dir", data_dir], "not a finished run", code=2)


def test_evaluate_missing_dir(capsys, data_dir, tmp_path):
    assert_user_error(capsys, ["evaluate", tmp_path / "nope", "--data-dir", data_dir], "not a directory", code=2)


def test_evaluate_a_file(capsys, data_dir, tmp_path):
    (tmp_path / "file").write_text("x")
    assert_user_error(capsys, ["evaluate", tmp_path / "file", "--data-dir", data_dir], "not a directory", code=2)


def test_evaluate_unfinished_run(capsys, run_copy, data_dir):
    (run_copy / rundir.RESULT).unlink()
    assert_user_error(capsys, ["evaluate", run_copy, "--data-dir", data_dir], "--resume", code=2)


@pytest.mark.parametrize("keep", [0, 7, "half", "all but 1"])
def test_evaluate_damaged_weights(capsys, run_copy, data_dir, keep):
    weights = run_copy / rundir.WEIGHTS
    size = weights.stat().st_size
    keep = {"half": size // 2, "all but 1": size - 1}.get(keep, keep)
    os.truncate(weights, keep)
    assert_user_error(capsys, ["evaluate", run_copy, "--data-dir", data_dir], str(weights), "damaged", code=2)


def test_evaluate_missing_weights(capsys, run_copy, data_dir):
    (run_copy / rundir.WEIGHTS).unlink()
    assert_user_error(capsys, ["evaluate", run_copy, "--data-dir", data_dir], rundir.WEIGHTS, code=2)


def test_evaluate_damaged_config(capsys, run_copy, data_dir):
    (run_copy / rundir.CONFIG).write_text('{"model": "lstm",')
    assert_user_error(capsys, ["evaluate", run_copy, "--data-dir", data_dir], "config.json", code=2)


def test_evaluate_weights_of_another_model(capsys, run_copy, data_dir):
    config = json.loads((run_copy / rundir.CONFIG).read_text())
    config["hidden_size"] = 32  # the saved weights are for hidden size 16
    (run_copy / rundir.CONFIG).write_text(json.dumps(config))
    assert_user_error(capsys, ["evaluate", run_copy, "--data-dir", data_dir], "does not fit", code=2)


def test_evaluate_against_another_image_size(capsys, trained_run, small_data_dir):
    assert_user_error(capsys, ["evaluate", trained_run, "--data-dir", small_data_dir], "[28, 28]", "[12, 16]", code=2)


def test_evaluate_against_more_classes(capsys, trained_run, tmp_path):
    folder = write_dataset(tmp_path / "13-classes", n_train=65, n_test=26, classes=13)
    assert_user_error(capsys, ["evaluate", trained_run, "--data-dir", folder], "10 classes", code=2)


def test_evaluate_against_fewer_classes_is_fine(capsys, trained_run, tmp_path):
    folder = write_dataset(tmp_path / "4-classes", n_train=40, n_test=20, classes=4)
    code, out, err = run_cli(capsys, ["evaluate", trained_run, "--data-dir", folder])
    assert (code, err) == (0, "")
    assert "(20 images)" in out


def test_a_run_evaluates_only_on_the_dataset_it_was_trained_on(capsys, data_dir, make_dataset, tmp_path, monkeypatch):
    md5s = {name: hashlib.md5((data_dir / f"{name}.gz").read_bytes()).hexdigest() for name in NAMES.values()}
    monkeypatch.setitem(known.KNOWN, "kmnist", dataclasses.replace(known.KNOWN["kmnist"], gzip_md5=md5s))
    run_dir = tmp_path / "run"
    assert run_cli(capsys, ["train", *TINY, "--data-dir", data_dir, "--run-dir", run_dir])[0] == 0
    other = make_dataset("other", seed=5)
    # A person's own test files (custom data) evaluate; another known dataset is refused.
    assert run_cli(capsys, ["evaluate", run_dir, "--data-dir", other])[0] == 0
    md5s = {name: hashlib.md5((other / f"{name}.gz").read_bytes()).hexdigest() for name in NAMES.values()}
    monkeypatch.setitem(known.KNOWN, "fashion-mnist", dataclasses.replace(known.KNOWN["fashion-mnist"], gzip_md5=md5s))
    assert_user_error(capsys, ["evaluate", run_dir, "--data-dir", other], "trained on KMNIST but", code=2)
    # Without --data-dir, the run's own dataset is asked for: digitlab fetches only MNIST.
    assert_user_error(capsys, ["evaluate", run_dir], "KMNIST was asked for", "--data-dir", code=2)
