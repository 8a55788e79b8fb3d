"""fit()'s per-epoch hook: it sees each epoch's metrics and may ask the run to stop and finish there."""

from __future__ import annotations

import json

from digitlab.config import TrainConfig
from digitlab.training.fit import fit


def quiet(*args, **kwargs):
    pass


def config_for(data_dir, run_dir, epochs=3) -> TrainConfig:
    return TrainConfig(
        model="mlp", hidden_size=16, num_layers=1, batch_size=50, epochs=epochs, data_dir=str(data_dir),
        run_dir=str(run_dir), threads=1, progress="none", device="cpu",
    )  # fmt: skip


def result(run_dir) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def test_hook_sees_every_epoch_row(session_data_dir, tmp_path):
    seen = []
    fit(config_for(session_data_dir, tmp_path / "run"), log=quiet, on_epoch=lambda row: seen.append(row) and False)
    assert [row["epoch"] for row in seen] == [1, 2, 3]
    assert all("test/acc" in row and "train/seconds" in row for row in seen)


def test_hook_stops_the_run_and_it_finishes_there(session_data_dir, tmp_path):
    run = fit(config_for(session_data_dir, tmp_path / "run"), log=quiet, on_epoch=lambda row: row["epoch"] == 1)
    assert result(run)["epochs"] == 1
    assert result(run)["stopped_early"] is True
    assert (run / "model.safetensors").is_file()


def test_hook_asking_at_the_last_epoch_is_a_normal_finish(session_data_dir, tmp_path):
    run = fit(
        config_for(session_data_dir, tmp_path / "run", epochs=2), log=quiet, on_epoch=lambda row: row["epoch"] == 2
    )
    assert result(run)["epochs"] == 2
    assert result(run)["stopped_early"] is False


def test_a_run_stopped_by_the_hook_resumes_to_its_epochs(session_data_dir, tmp_path):
    run = fit(config_for(session_data_dir, tmp_path / "run"), log=quiet, on_epoch=lambda row: row["epoch"] == 1)
    fit(config_for(session_data_dir, run), resuming=True, log=quiet)
    assert result(run)["epochs"] == 3
