"""`digitlab predict RUN_DIR` on MNIST test digits end to end through digitlab.cli.main([...]): each digit drawn
as text at the run's image size, and data it cannot use (one line on stderr, a non-zero exit code). Predicting a
person's image files is tested in tests/inference/test_predict_files.py."""

from __future__ import annotations

import numpy as np

from digitlab.data import idx
from helpers import NAMES, TINY, assert_user_error, run_cli

# --- the happy path ----------------------------------------------------------------------------------


def test_predict_draws_each_digit_as_text(capsys, trained_run, session_data_dir):
    code, out, err = run_cli(capsys, ["predict", trained_run, "--test-samples", 2, "--data-dir", session_data_dir])
    assert (code, err) == (0, "")
    predictions = [line for line in out.splitlines() if line.startswith("test image ")]
    assert len(predictions) == 2
    assert all("predicted" in line and "true" in line for line in predictions)
    shown = [line for line in out.splitlines() if not line.startswith("note: ")]  # the custom-data note aside
    assert len(shown) == 2 * (1 + 28)  # each prediction is followed by the digit as 28 text rows
    assert all(len(line) == 4 + 28 for line in shown if not line.startswith("test image "))


def test_predict_on_another_image_size(capsys, small_data_dir, tmp_path):
    # A model trained on 12x16 images works with 12x16 data end to end.
    run_dir = tmp_path / "run"
    code, _, _ = run_cli(
        capsys, ["train", *TINY, "--batch-size", "40", "--data-dir", small_data_dir, "--run-dir", run_dir]
    )
    assert code == 0
    code, out, err = run_cli(capsys, ["predict", run_dir, "--test-samples", 3, "--data-dir", small_data_dir])
    assert (code, err) == (0, "")
    shown = [line for line in out.splitlines() if not line.startswith("note: ")]
    assert len(shown) == 3 * (1 + 12)
    assert all(len(line) == 4 + 16 for line in shown if not line.startswith("test image "))


# --- bad input: one line, non-zero exit, no traceback ------------------------------------------------


def test_predict_against_another_image_size(capsys, trained_run, small_data_dir):
    assert_user_error(capsys, ["predict", trained_run, "--data-dir", small_data_dir], "[12, 16]", code=2)


def test_predict_needs_a_positive_count(capsys, trained_run, data_dir):
    assert_user_error(
        capsys, ["predict", trained_run, "--test-samples", "0", "--data-dir", data_dir], "--test-samples", code=2
    )


def test_predict_damaged_labels_file(capsys, trained_run, make_dataset):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    idx.write(folder / NAMES["test_labels"], np.zeros(19, dtype=np.uint8))
    assert_user_error(capsys, ["predict", trained_run, "--data-dir", folder], "19 labels", code=2)


def test_a_negative_number_of_workers_is_refused(capsys, tmp_path):
    picture = tmp_path / "seven.png"
    picture.write_bytes(b"not read: the option is refused first")
    assert_user_error(capsys, ["predict", picture, "--workers", "-1"], "--workers must be 0 or more")
