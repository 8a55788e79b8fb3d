"""The `digitlab` command end to end: digitlab.cli.main([...]) in-process, and `python -m digitlab`.

Bad input must end with a non-zero exit code and one line on stderr, "digitlab: error: ...", never a traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from digitlab.cli import main
from digitlab.config import TrainConfig, flag
from digitlab.data import idx, known
from digitlab.models import MODELS
from digitlab.store import rundir
from helpers import NAMES, write_dataset

TINY = "--model lstm --hidden-size 16 --num-layers 1 --batch-size 50 --epochs 1 --threads 1 --device cpu".split()
TINY += ["--progress", "none"]


def run_cli(capsys, argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, argv, *words, code=None):
    """main(argv) fails cleanly: non-zero exit, one 'digitlab: error:' line on stderr, no traceback."""
    status, out, err = run_cli(capsys, argv)
    assert status != 0
    if code is not None:
        assert status == code
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("digitlab: error: "), err
    assert "Traceback" not in out + err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the session's finished run that a test may damage."""
    destination = tmp_path / "run-copy"
    shutil.copytree(trained_run, destination)
    return destination


# --- the happy path ----------------------------------------------------------------------------------


def test_train_writes_a_finished_run(capsys, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, ["train", *TINY, "--data-dir", data_dir, "--run-dir", run_dir])
    assert (code, err) == (0, "")
    assert f"run directory: {run_dir}" in out
    assert "test acc %" in out  # the epoch table's heading
    assert rundir.is_finished(run_dir)
    config = json.loads((run_dir / rundir.CONFIG).read_text())
    assert (config["model"], config["hidden_size"], config["num_layers"], config["batch_size"]) == ("lstm", 16, 1, 50)
    assert config["data_dir"] == str(data_dir)
    assert len((run_dir / rundir.STEPS).read_text().splitlines()) == 6  # 300 examples / 50


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


def test_predict_draws_each_digit_as_text(capsys, trained_run, session_data_dir):
    code, out, err = run_cli(capsys, ["predict", trained_run, "--test-samples", 2, "--data-dir", session_data_dir])
    assert (code, err) == (0, "")
    predictions = [line for line in out.splitlines() if line.startswith("test image ")]
    assert len(predictions) == 2
    assert all("predicted" in line and "true" in line for line in predictions)
    shown = [line for line in out.splitlines() if not line.startswith("note: ")]  # the custom-data note aside
    assert len(shown) == 2 * (1 + 28)  # each prediction is followed by the digit as 28 text rows
    assert all(len(line) == 4 + 28 for line in shown if not line.startswith("test image "))


def test_data_describes_the_folder(capsys, data_dir):
    code, out, err = run_cli(capsys, ["data", "--data-dir", data_dir])
    assert (code, err) == (0, "")
    assert f"source: folder {data_dir}" in out
    assert "verified: no" in out
    assert "image size: 28x28, classes: 10" in out
    assert "train: 300 examples" in out and "test: 100 examples" in out
    assert out.count("sha256 ") == 4


def test_models_lists_every_model(capsys):
    code, out, err = run_cli(capsys, ["models"])
    assert (code, err) == (0, "")
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == list(MODELS)
    assert "parameters" in out


def test_train_flags_reach_the_config(capsys, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    flags = "--model mlp --hidden-size 8 --optimizer sgd --lr 0.05 --seed 3 --val-size 20 --train-limit 120"
    flags += " --test-limit 30 --batch-size 25 --deterministic --threads 1 --progress none --keep-checkpoints 1"
    code, _, err = run_cli(capsys, ["train", *flags.split(), "--data-dir", data_dir, "--run-dir", run_dir])
    assert (code, err) == (0, "")
    config = json.loads((run_dir / rundir.CONFIG).read_text())
    given = {
        "model": "mlp", "hidden_size": 8, "optimizer": "sgd", "lr": 0.05, "seed": 3, "val_size": 20,
        "train_limit": 120, "test_limit": 30, "batch_size": 25, "deterministic": True, "keep_checkpoints": 1,
    }  # fmt: skip
    assert {k: config[k] for k in given} == given
    assert config["num_layers"] is None and config["epochs"] == 1  # not given: defaults
    (row,) = [json.loads(line) for line in (run_dir / rundir.METRICS).read_text().splitlines()]
    assert "val/acc" in row


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


def module_environment() -> dict:
    return dict(os.environ, PYTHONWARNINGS="error::DeprecationWarning:digitlab")


def test_python_dash_m_digitlab_trains(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "digitlab", "train", *TINY, "--data-dir", str(data_dir), "--run-dir", str(run_dir)],
        capture_output=True, text=True, env=module_environment(), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"run directory: {run_dir}" in done.stdout
    assert rundir.is_finished(run_dir)


def test_python_dash_m_digitlab_fails_with_one_line(data_dir, tmp_path):
    failed = subprocess.run(
        [sys.executable, "-m", "digitlab", "evaluate", str(tmp_path / "nothing-here"), "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=module_environment(), timeout=300,
    )  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr.startswith("digitlab: error: ") and len(failed.stderr.splitlines()) == 1, failed.stderr
    assert "Traceback" not in failed.stderr


def train_help(capsys) -> str:
    with pytest.raises(SystemExit) as caught:
        main(["train", "--help"])
    assert caught.value.code == 0
    return capsys.readouterr().out


def test_train_help_has_a_flag_for_every_setting_in_its_group(capsys):
    text = train_help(capsys)
    for field in dataclasses.fields(TrainConfig):
        assert flag(field.name) in text, field.name
        assert f"{field.metadata['group']}:" in text, field.metadata["group"]


def test_train_help_shows_no_default_of_none(capsys):
    assert "(default: None)" not in train_help(capsys)


# --- bad input: one line, non-zero exit, no traceback ------------------------------------------------


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--model", "transformer"], ["unknown model 'transformer'"]),
        (["--optimizer", "lion"], ["unknown optimizer 'lion'"]),
        (["--batch-size", "0"], ["--batch-size must be positive"]),
        (["--batch-size", "301"], ["larger than the training set"]),
        (["--epochs", "-1"], ["--epochs must be positive"]),
        (["--lr", "0"], ["--lr must be positive"]),
        (["--val-size", "300"], ["--val-size 300"]),
        (["--model", "cnn", "--num-layers", "3"], ["--num-layers"]),
        (["--device", "tpu"], ["unsupported device 'tpu'"]),
        (["--precision", "fp16", "--device", "cpu"], ["fp16"]),
        (["--model", "blstm", "--blstm-head", "middle"], ["BLSTM head"]),
        (["--blstm-head", "middle"], ["BLSTM head"]),
    ],
    ids=lambda value: " ".join(value) if len(value) > 1 else None,
)
def test_train_bad_flags(capsys, data_dir, tmp_path, flags, words):
    run_dir = tmp_path / "run"
    assert_user_error(capsys, ["train", *TINY, *flags, "--data-dir", data_dir, "--run-dir", run_dir], *words, code=2)
    assert not run_dir.exists()


def test_train_missing_data_dir(capsys, tmp_path):
    assert_user_error(
        capsys,
        ["train", *TINY, "--data-dir", tmp_path / "nowhere", "--run-dir", tmp_path / "run"],
        str(tmp_path / "nowhere"),
        "lacks",
        code=2,
    )
    assert not (tmp_path / "run").exists()


def test_train_into_existing_run(capsys, run_copy, data_dir):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}
    assert_user_error(capsys, ["train", *TINY, "--seed", "9", "--data-dir", data_dir, "--run-dir", run_copy],
                      "already holds a finished run", code=2)  # fmt: skip
    assert {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()} == before


def test_train_run_dir_under_a_file(capsys, data_dir, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    assert_user_error(capsys, ["train", *TINY, "--data-dir", data_dir, "--run-dir", tmp_path / "file" / "run"],
                      "cannot write the run directory", code=2)  # fmt: skip
    assert (tmp_path / "file").read_text() == "not a folder"


def test_train_divergence_exits_1(capsys, data_dir, tmp_path):
    diverging = "--model mlp --optimizer sgd --lr 1e30".split()
    assert_user_error(capsys, ["train", *TINY, *diverging, "--data-dir", data_dir, "--run-dir", tmp_path / "run"],
                      "diverged", code=1)  # fmt: skip


def test_resume_with_changed_settings(capsys, run_copy):
    line = assert_user_error(capsys, ["train", "--resume", run_copy, "--lr", "0.5", "--epochs", "2"],
                             "--resume keeps", code=2)  # fmt: skip
    refused = line.split("drop ")[1].split(" (")[0]
    assert refused == "--lr"  # --epochs may change on resume


def test_resume_of_a_non_run(capsys, tmp_path):
    assert_user_error(capsys, ["train", "--resume", tmp_path], "config.json", "missing", code=2)


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


def test_predict_against_another_image_size(capsys, trained_run, small_data_dir):
    assert_user_error(capsys, ["predict", trained_run, "--data-dir", small_data_dir], "[12, 16]", code=2)


def test_evaluate_against_more_classes(capsys, trained_run, tmp_path):
    folder = write_dataset(tmp_path / "13-classes", n_train=65, n_test=26, classes=13)
    assert_user_error(capsys, ["evaluate", trained_run, "--data-dir", folder], "10 classes", code=2)


def test_evaluate_against_fewer_classes_is_fine(capsys, trained_run, tmp_path):
    folder = write_dataset(tmp_path / "4-classes", n_train=40, n_test=20, classes=4)
    code, out, err = run_cli(capsys, ["evaluate", trained_run, "--data-dir", folder])
    assert (code, err) == (0, "")
    assert "(20 images)" in out


def test_predict_needs_a_positive_count(capsys, trained_run, data_dir):
    assert_user_error(
        capsys, ["predict", trained_run, "--test-samples", "0", "--data-dir", data_dir], "--test-samples", code=2
    )


def test_predict_damaged_labels_file(capsys, trained_run, make_dataset):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    idx.write(folder / NAMES["test_labels"], np.zeros(19, dtype=np.uint8))
    assert_user_error(capsys, ["predict", trained_run, "--data-dir", folder], "19 labels", code=2)


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


def test_under_torchrun_only_rank_0_prints_the_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "1")
    code, out, err = run_cli(capsys, ["evaluate", tmp_path / "missing"])
    assert code == 2 and err == ""
    monkeypatch.setenv("RANK", "0")
    assert_user_error(capsys, ["evaluate", tmp_path / "missing"], "not a directory", code=2)


def test_a_resumed_run_goes_on_with_the_dataset_it_started_with(capsys, data_dir, make_dataset, tmp_path, monkeypatch):
    md5s = {name: hashlib.md5((data_dir / f"{name}.gz").read_bytes()).hexdigest() for name in NAMES.values()}
    monkeypatch.setitem(known.KNOWN, "kmnist", dataclasses.replace(known.KNOWN["kmnist"], gzip_md5=md5s))
    run_dir = tmp_path / "run"
    assert run_cli(capsys, ["train", *TINY, "--data-dir", data_dir, "--run-dir", run_dir])[0] == 0
    assert rundir.load_config(run_dir).dataset == "kmnist"  # found by `auto`, recorded as what ran
    other = make_dataset("other", seed=5)  # custom data
    assert_user_error(capsys, ["train", "--resume", run_dir, "--epochs", "2", "--data-dir", other], "KMNIST", code=2)
