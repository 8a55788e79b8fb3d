"""Adapting a finished model to a person's samples (digitlab.inference.adapt, `digitlab adapt`): it learns a hand
the base model cannot read, keeps what the base knew, records what it saw, and leaves nothing behind when it
fails or is stopped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.errors import DataError, RunError
from digitlab.inference import adapt as adapting
from digitlab.inference.adapt import ADAPT_RECORD, adapt, split_held_out
from digitlab.inference.classifier import open_classifier
from digitlab.store.samples import open_samples
from helpers import assert_user_error, run_cli, synthetic_digits


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, session_data_dir):
    """A finished MLP run with a validation split, on the session's synthetic digits."""
    from digitlab.config import TrainConfig
    from digitlab.training.fit import fit

    config = TrainConfig(
        model="mlp", epochs=3, lr=0.01, batch_size=50, val_size=50, data_dir=str(session_data_dir),
        run_dir=str(tmp_path_factory.mktemp("base") / "run"), threads=1, progress="none", device="cpu",
    )  # fmt: skip
    return fit(config, log=lambda *args, **kwargs: None)


def another_hand(count: int = 100, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The same ten classes drawn in another 'hand': other prototypes than the ones the base run learnt."""
    images, labels = synthetic_digits(count, seed=seed, prototype_seed=99)
    return images, labels.astype(np.int64)


def quiet(*args, **kwargs):
    pass


def test_a_new_hand_is_learnt_and_recorded(base_run, session_data_dir, tmp_path):
    images, labels = another_hand()
    ids = [f"{i:032x}" for i in range(len(labels))]
    out = tmp_path / "adapted"
    record = adapt(
        base_run, images, labels, out, sample_ids=ids, holdout=0.3, data_dir=str(session_data_dir), epochs=6, log=quiet
    )
    assert record["run_dir"] == str(out)
    assert record["after"]["held_out_acc"] >= record["before"]["held_out_acc"] + 0.3, record
    assert sorted(record["adapted_on"] + record["held_out"]) == ids
    assert not set(record["adapted_on"]) & set(record["held_out"]) and len(record["held_out"]) == 30
    saved = json.loads((out / ADAPT_RECORD).read_text())
    assert saved["adapted_on"] == record["adapted_on"]
    config = json.loads((out / "config.json").read_text())
    assert config["run_dir"] == str(out) and config["init"] == str(base_run)
    assert (out / "calibration.json").is_file()
    assert open_classifier(out).probabilities(images[:3]).shape == (3, 10)  # an ordinary run directory
    assert not list(tmp_path.glob(".*"))  # the staging folder became OUT


def test_held_out_split_is_stratified_and_keeps_every_label():
    labels = np.array([0] * 10 + [1] * 3 + [2])
    held = split_held_out(labels, 0.2, seed=0)
    assert held[labels == 0].sum() == 2 and held[labels == 1].sum() == 0 and held[labels == 2].sum() == 0
    assert np.array_equal(held, split_held_out(labels, 0.2, seed=0))


def test_too_few_samples_and_an_existing_out_are_refused_before_training(base_run, tmp_path, monkeypatch):
    images, labels = another_hand(30)
    monkeypatch.setattr(adapting, "MIN_SAMPLES", 31)
    with pytest.raises(
        DataError, match="30 digit samples are left to adapt on .0 held out.; adapting needs at least 31"
    ):
        adapt(base_run, images, labels, tmp_path / "out", holdout=0.2, log=quiet)  # 3 per label, none held out
    (tmp_path / "taken").mkdir()
    with pytest.raises(RunError, match="already exists"):
        adapt(base_run, *another_hand(), tmp_path / "taken", log=quiet)
    with pytest.raises(DataError, match="not digits"):
        adapt(base_run, images, np.full(30, 11), tmp_path / "out", log=quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_stopped_adapt_leaves_no_run(base_run, session_data_dir, tmp_path, monkeypatch):
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("digitlab.inference.calibration.calibrate_run", stopped)
    with pytest.raises(KeyboardInterrupt):
        adapt(base_run, *another_hand(), tmp_path / "out", data_dir=str(session_data_dir), epochs=1, log=quiet)
    assert list(tmp_path.iterdir()) == []


def test_the_command_adapts_from_a_samples_folder(capsys, base_run, session_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(adapting, "MIN_SAMPLES", 5)
    folder = open_samples(tmp_path / "mine", create=True)
    images, labels = another_hand(20)
    for image, label in zip(images, labels):
        folder.add(str(label), image)
    argv = ["adapt", base_run, tmp_path / "mine", "--out", tmp_path / "run", "--epochs", 1]
    code, out, err = run_cli(capsys, [*argv, "--data-dir", session_data_dir, "--json"])
    assert code == 0, err
    record = json.loads(out)
    assert record["samples"] == str(tmp_path / "mine") and len(record["adapted_on"]) + len(record["held_out"]) == 20
    assert_user_error(capsys, ["adapt", base_run, tmp_path / "nowhere", "--out", tmp_path / "r2"], "not a samples")
    assert_user_error(capsys, ["adapt", tmp_path / "mine", tmp_path / "mine", "--out", tmp_path / "r3"], "finished")


def test_another_seed_draws_another_split_and_keeps_the_base_validation(base_run, session_data_dir, tmp_path):
    images, labels = another_hand(40)
    first = adapt(base_run, images, labels, tmp_path / "a", holdout=0.3, data_dir=str(session_data_dir), epochs=1,
                  seed=0, log=quiet)  # fmt: skip
    other = adapt(base_run, images, labels, tmp_path / "b", holdout=0.3, data_dir=str(session_data_dir), epochs=1,
                  seed=3, log=quiet)  # fmt: skip
    assert first["held_out"] != other["held_out"]
    assert json.loads((tmp_path / "b" / "config.json").read_text())["seed"] == 0  # the base's: its validation digits
