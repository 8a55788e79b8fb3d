"""`digitlab train` end to end through digitlab.cli.main([...]): a finished run, flags reaching the config, the
help, and bad input (one line on stderr, a non-zero exit code, nothing written), `--resume` included."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from digitlab.cli import main
from digitlab.config import TrainConfig, flag
from digitlab.data import known
from digitlab.store import rundir
from helpers import NAMES, TINY, assert_user_error, run_cli

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
    command = json.loads((run_dir / rundir.ENV).read_text())["command"]  # what made the run, as it was called
    assert command == " ".join(["digitlab", "train", *TINY, "--data-dir", str(data_dir), "--run-dir", str(run_dir)])


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


def test_a_resumed_run_goes_on_with_the_dataset_it_started_with(capsys, data_dir, make_dataset, tmp_path, monkeypatch):
    md5s = {name: hashlib.md5((data_dir / f"{name}.gz").read_bytes()).hexdigest() for name in NAMES.values()}
    monkeypatch.setitem(known.KNOWN, "kmnist", dataclasses.replace(known.KNOWN["kmnist"], gzip_md5=md5s))
    run_dir = tmp_path / "run"
    assert run_cli(capsys, ["train", *TINY, "--data-dir", data_dir, "--run-dir", run_dir])[0] == 0
    assert rundir.load_config(run_dir).dataset == "kmnist"  # found by `auto`, recorded as what ran
    other = make_dataset("other", seed=5)  # custom data
    assert_user_error(capsys, ["train", "--resume", run_dir, "--epochs", "2", "--data-dir", other], "KMNIST", code=2)


# --- non-digits and fine-tuning (--negatives, --init) -------------------------------------------------------


@pytest.fixture
def fake_pool(monkeypatch):
    """digitlab.inference.negatives.pool replaced by noise (drawing real non-digits is tests/data's and slow);
    the calls it got."""
    import numpy as np

    import digitlab.inference.negatives as negatives

    asked = []

    def pool(count, split="train", seed=0, **kwargs):
        asked.append((count, split, seed))
        return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)

    monkeypatch.setattr(negatives, "pool", pool)
    return asked


def test_train_negatives_and_init_reach_the_run(capsys, data_dir, tmp_path, trained_run, fake_pool):
    run_dir = tmp_path / "run"
    flags = ["--negatives", "40", "--init", str(trained_run), "--seed", "2", "--lr", "0.0001"]
    code, out, err = run_cli(capsys, ["train", *TINY, *flags, "--data-dir", data_dir, "--run-dir", run_dir])
    assert (code, err) == (0, "")
    assert fake_pool == [(40, "train", 2)]  # the training split's pool, seeded by --seed
    assert "40 of the examples non-digits" in out and f"starting from the weights of {trained_run}" in out
    config = json.loads((run_dir / rundir.CONFIG).read_text())
    assert (config["negatives"], config["init"]) == (40, str(trained_run))
    assert len((run_dir / rundir.STEPS).read_text().splitlines()) == 7  # (300 digits + 40 non-digits) / 50


def test_train_without_negatives_draws_none(capsys, data_dir, tmp_path, fake_pool):
    code, _, err = run_cli(capsys, ["train", *TINY, "--data-dir", data_dir, "--run-dir", tmp_path / "run"])
    assert (code, err, fake_pool) == (0, "", [])


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--negatives", "-1"], ["--negatives must be 0 or more"]),
        (["--init", "."], ["--init . is not a finished run"]),
    ],
)
def test_train_bad_negatives_or_init(capsys, data_dir, tmp_path, fake_pool, flags, words):
    run_dir = tmp_path / "run"
    assert_user_error(capsys, ["train", *TINY, *flags, "--data-dir", data_dir, "--run-dir", run_dir], *words, code=2)
    assert not run_dir.exists() and fake_pool == []


def test_train_init_from_another_network_is_refused(capsys, data_dir, tmp_path, trained_run, fake_pool):
    argv = ["train", *TINY, "--hidden-size", "32", "--init", str(trained_run), "--data-dir", data_dir]
    assert_user_error(capsys, [*argv, "--run-dir", tmp_path / "run"], "holds another network", code=2)
    assert not (tmp_path / "run").exists()
