"""Divergence: a non-finite loss or gradient, or a loss far above chance level, stops the run before the bad
update reaches the weights, and leaves the last good state checkpointed (digitlab.training.loop)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from digitlab.cli import main
from digitlab.config import TrainConfig
from digitlab.errors import ConfigError, TrainingError
from digitlab.store import checkpoint, rundir
from digitlab.store.files import read_rows
from digitlab.training import distributed
from digitlab.training.fit import fit


def quiet(*args, **kwargs):
    pass


def config_for(data_dir: Path, run_dir: Path, **changes) -> TrainConfig:
    settings = dict(
        model="mlp", hidden_size=16, num_layers=1, optimizer="sgd", lr=1e30, batch_size=50, epochs=2,
        data_dir=str(data_dir), run_dir=str(run_dir), threads=1, device="cpu", progress="none",
        divergence_factor=0,  # only non-finite values stop these runs; the loss limit is tested at the end
    )  # fmt: skip
    settings.update(changes)
    return TrainConfig(**settings)


def checkpoint_steps(run_dir: Path) -> list[int]:
    return [
        int(checkpoint.CHECKPOINT_NAME.match(p.name).group(1))
        for p in checkpoint.list_checkpoints(run_dir / rundir.CHECKPOINTS)
    ]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, session_data_dir) -> tuple[Path, TrainingError]:
    """A run at lr 1e30: step 1 is finite, step 2 is not (never modify it; copy it)."""
    run_dir = tmp_path_factory.mktemp("diverged") / "run"
    with pytest.raises(TrainingError) as caught:
        fit(config_for(session_data_dir, run_dir), log=quiet)
    return run_dir, caught.value


def test_divergence_stops_at_the_first_non_finite_step(diverged):
    run_dir, error = diverged
    message = str(error)
    (row,) = read_rows(run_dir / rundir.STEPS)  # step 1 was finite; step 2 was not, and was not taken
    assert "diverged at epoch 1, step 2 (global step 2)" in message
    assert f"last finite loss {row['train/loss']:.4g}" in message
    assert error.exit_code != 0
    assert not rundir.is_finished(run_dir)


def test_divergence_suggests_a_lower_learning_rate(diverged):
    _, error = diverged
    assert "lower learning rate" in str(error) and "--lr 1e+29" in str(error)


def test_divergence_checkpoints_the_last_finite_weights(diverged):
    run_dir, _ = diverged
    assert checkpoint_steps(run_dir) == [1]
    tensors, metadata = checkpoint.load_latest(run_dir / rundir.CHECKPOINTS, log=quiet)
    assert metadata["progress"]["global_step"] == 1
    assert all(torch.isfinite(value).all() for name, value in tensors.items() if name.startswith("model."))


def test_resuming_a_diverged_run_stops_at_the_same_step(diverged, tmp_path, capsys):
    # `train --resume` with the run's own settings loads it, takes step 2 again, and stops there again.
    run_dir = tmp_path / "run"
    shutil.copytree(diverged[0], run_dir)
    before = checkpoint.list_checkpoints(run_dir / rundir.CHECKPOINTS)[0].read_bytes()
    assert main(["train", "--resume", str(run_dir)]) == TrainingError.exit_code
    assert "step 2 (global step 2)" in capsys.readouterr().err
    assert checkpoint.list_checkpoints(run_dir / rundir.CHECKPOINTS)[0].read_bytes() == before  # left intact
    assert len(read_rows(run_dir / rundir.STEPS)) == 1


def test_non_finite_weights_are_never_checkpointed(session_data_dir, tmp_path):
    run_dir = tmp_path / "run"
    config = config_for(session_data_dir, run_dir, lr=float("inf"), epochs=1)
    # Step 1's loss and gradient are finite, but its update makes the weights infinite: step 2's loss is not
    # finite, and the weights it started from are not worth a checkpoint.
    with pytest.raises(TrainingError, match=r"step 2 \(global step 2\).*were not checkpointed"):
        fit(config, log=quiet)
    assert checkpoint_steps(run_dir) == []
    assert len(read_rows(run_dir / rundir.STEPS)) == 1


# --- a loss that explodes but stays finite -------------------------------------------------------------


def test_a_loss_far_above_chance_level_stops_the_run(session_data_dir, tmp_path):
    # lr 1e12: step 1 is sound (loss about ln 10); its update makes step 2's loss enormous but finite.
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingError) as caught:
        fit(config_for(session_data_dir, run_dir, lr=1e12, divergence_factor=1000), log=quiet)
    message = str(caught.value)
    assert "diverged at epoch 1, step 2 (global step 2)" in message
    assert "is above 2303" in message and "--divergence-factor 0" in message and "--lr 1e+11" in message
    assert caught.value.exit_code == 1
    (row,) = read_rows(run_dir / rundir.STEPS)  # step 2 was not taken
    assert row["train/loss"] < 3
    assert checkpoint_steps(run_dir) == [1]  # the weights step 2 started from: the run can be resumed
    assert not rundir.is_finished(run_dir)


def test_the_loss_limit_is_a_factor_of_chance_level(session_data_dir, tmp_path):
    from digitlab.training.session import build_session

    def limit(factor: float) -> float:
        config = config_for(session_data_dir, tmp_path, divergence_factor=factor, micro_batch=100)
        return build_session(config, (28, 28), 10, torch.device("cpu"), distributed.Context()).loss_limit

    assert limit(1000) == pytest.approx(1000 * math.log(10))
    assert limit(0) == math.inf  # the check is off


def test_a_negative_divergence_factor_is_refused():
    with pytest.raises(ConfigError, match="--divergence-factor"):
        TrainConfig(divergence_factor=-1).validate()
