"""`digitlab data` end to end through digitlab.cli.main([...]): the folder described, a known dataset named (and
its class names reaching train, evaluate and predict), and data it cannot obtain (one line on stderr)."""

from __future__ import annotations

import dataclasses
import hashlib

from digitlab.data import known
from digitlab.store import rundir
from helpers import NAMES, TINY, assert_user_error, run_cli

# --- the happy path ----------------------------------------------------------------------------------


def test_data_describes_the_folder(capsys, data_dir):
    code, out, err = run_cli(capsys, ["data", "--data-dir", data_dir])
    assert (code, err) == (0, "")
    assert f"source: folder {data_dir}" in out
    assert "verified: no" in out
    assert "image size: 28x28, classes: 10" in out
    assert "train: 300 examples" in out and "test: 100 examples" in out
    assert out.count("sha256 ") == 4


def test_a_known_dataset_is_named_and_its_class_names_reach_evaluate_and_predict(
    capsys, data_dir, tmp_path, monkeypatch
):
    # Declare the synthetic .gz files to be Fashion-MNIST's published ones.
    md5s = {name: hashlib.md5((data_dir / f"{name}.gz").read_bytes()).hexdigest() for name in NAMES.values()}
    monkeypatch.setitem(known.KNOWN, "fashion-mnist", dataclasses.replace(known.KNOWN["fashion-mnist"], gzip_md5=md5s))
    code, out, _ = run_cli(capsys, ["data", "--data-dir", data_dir])
    assert code == 0 and "dataset: Fashion-MNIST, verified: yes" in out
    run_dir = tmp_path / "run"
    assert run_cli(capsys, ["train", *TINY, "--data-dir", data_dir, "--run-dir", run_dir])[0] == 0
    assert rundir.read_weights(run_dir)[1]["class_names"][0] == "T-shirt/top"
    code, out, _ = run_cli(capsys, ["evaluate", run_dir, "--data-dir", data_dir])
    assert code == 0 and "T-shirt/top: " in out and "9 Ankle boot" in out
    code, out, _ = run_cli(capsys, ["predict", run_dir, "--data-dir", data_dir, "--test-samples", "3"])
    names = known.KNOWN["fashion-mnist"].classes
    predictions = [line for line in out.splitlines() if line.startswith("test image")]
    assert code == 0 and len(predictions) == 3
    assert all(any(line.split(", true ")[1].startswith(name) for name in names) for line in predictions)


# --- bad input: one line, non-zero exit, no traceback ------------------------------------------------


def test_data_missing_dir(capsys, tmp_path):
    assert_user_error(capsys, ["data", "--data-dir", tmp_path / "nowhere"], "lacks", code=2)


def test_data_damaged_file(capsys, make_dataset):
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    path = folder / f"{NAMES['train_images']}.gz"
    path.write_bytes(path.read_bytes()[:100])
    assert_user_error(capsys, ["data", "--data-dir", folder], str(path), code=2)


def test_data_without_any_source_fails_cleanly(capsys):
    # No folder, empty cache, no mirrors, no npm (conftest): the message lists every failure and the way out.
    code, out, err = run_cli(capsys, ["data"])
    assert code == 2
    assert err.startswith("digitlab: error: MNIST could not be obtained")
    assert "--data-dir" in err and "Traceback" not in out + err
