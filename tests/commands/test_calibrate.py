"""`digitlab calibrate RUN_DIR` end to end through digitlab.cli.main([...]): the temperature, the calibration error
before and after and the threshold printed and written to RUN_DIR/calibration.json; runs it cannot calibrate get
one line on stderr and exit 2."""

from __future__ import annotations

import json
import shutil

import pytest

from digitlab.config import TrainConfig
from digitlab.inference.calibration import CALIBRATION, read_calibration
from digitlab.training.fit import fit
from helpers import assert_user_error, run_cli


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory, session_data_dir):
    """A tiny MLP trained for one epoch with 60 of its 300 training images held out for validation."""
    config = TrainConfig(
        model="mlp", hidden_size=16, batch_size=50, epochs=1, val_size=60,
        data_dir=str(session_data_dir), run_dir=str(tmp_path_factory.mktemp("validated") / "run"),
        threads=1, progress="none", device="cpu",
    )  # fmt: skip
    return fit(config, log=lambda *args, **kwargs: None)


@pytest.fixture
def validated_copy(validated_run, tmp_path):
    return shutil.copytree(validated_run, tmp_path / "run")


def test_calibrate_prints_and_writes_the_calibration(capsys, validated_copy, session_data_dir):
    code, out, _ = run_cli(capsys, ["calibrate", validated_copy, "--data-dir", session_data_dir])
    assert code == 0
    calibration = read_calibration(validated_copy)
    assert f"temperature {calibration.temperature:.4f}, fitted on 60 validation digits" in out
    assert f"{calibration.ece_before:.2%} before, {calibration.ece_after:.2%} after" in out
    assert f"below a calibrated confidence of {calibration.reject_below:.4f}" in out
    assert f"written: {validated_copy / CALIBRATION}" in out


def test_calibrate_json_is_the_file(capsys, validated_copy, session_data_dir):
    code, out, _ = run_cli(capsys, ["calibrate", validated_copy, "--data-dir", session_data_dir, "--json"])
    assert code == 0 and json.loads(out) == json.loads((validated_copy / CALIBRATION).read_text())


def test_calibrating_again_gives_the_same_file(capsys, validated_copy, session_data_dir):
    run_cli(capsys, ["calibrate", validated_copy, "--data-dir", session_data_dir])
    first = (validated_copy / CALIBRATION).read_bytes()
    run_cli(capsys, ["calibrate", str(validated_copy) + "/", "--data-dir", str(session_data_dir) + "/"])
    assert (validated_copy / CALIBRATION).read_bytes() == first


def test_calibrate_what_is_not_a_run(capsys, tmp_path):
    assert_user_error(capsys, ["calibrate", tmp_path / "missing"], "is not a directory", code=2)
    assert_user_error(capsys, ["calibrate", tmp_path], "not a finished run", code=2)


def test_calibrate_a_run_without_a_validation_split(capsys, run_copy, session_data_dir):
    assert_user_error(
        capsys, ["calibrate", run_copy, "--data-dir", session_data_dir], "without a validation split", "--val-size",
        code=2,
    )  # fmt: skip
    assert not (run_copy / CALIBRATION).exists()


def test_calibrate_with_weights_the_run_does_not_have(capsys, validated_copy, session_data_dir):
    assert_user_error(capsys, ["calibrate", validated_copy, "--weights", "ema"], "no weight average", code=2)
