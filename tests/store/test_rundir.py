"""The run directory (digitlab.store.rundir): creating one, its config, whether it has finished, its weights."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.errors import RunError
from digitlab.store import rundir
from permissions import file_modes_enforced

ENVIRONMENT = {"device": "cpu", "threads": 1}


def config_for(run_dir: Path) -> TrainConfig:
    return TrainConfig(model="mlp", hidden_size=8, run_dir=str(run_dir))


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# --- create ----------------------------------------------------------------------------------------------


def test_create_writes_the_config_and_the_environment(tmp_path):
    run_dir = tmp_path / "a" / "b" / "run"  # missing parents are created
    config = config_for(run_dir)
    rundir.create(run_dir, config, ENVIRONMENT)
    assert sorted(os.listdir(run_dir)) == [rundir.CONFIG, rundir.ENV]
    assert json.loads((run_dir / rundir.ENV).read_text()) == ENVIRONMENT
    assert rundir.load_config(run_dir) == config


def test_create_accepts_an_empty_existing_folder(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rundir.create(run_dir, config_for(run_dir), ENVIRONMENT)
    assert (run_dir / rundir.CONFIG).is_file()


def test_create_refuses_a_finished_run_and_leaves_it_alone(tmp_path):
    run_dir = tmp_path / "run"
    rundir.create(run_dir, config_for(run_dir), ENVIRONMENT)
    (run_dir / rundir.RESULT).write_text("{}")
    before = contents(run_dir)
    with pytest.raises(RunError, match="already holds a finished run"):
        rundir.create(run_dir, config_for(run_dir).replace(seed=9), {"other": True})
    assert contents(run_dir) == before


def test_create_refuses_an_unfinished_run_and_says_resume(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / rundir.CONFIG).write_text(json.dumps(config_for(run_dir).to_dict()))
    with pytest.raises(RunError, match="--resume"):
        rundir.create(run_dir, config_for(run_dir), ENVIRONMENT)
    assert [p.name for p in run_dir.iterdir()] == [rundir.CONFIG]


def test_create_under_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match="cannot write the run directory"):
        rundir.create(blocker / "run", config_for(blocker / "run"), ENVIRONMENT)
    assert blocker.read_text() == "not a folder"


def test_create_under_a_read_only_folder_is_refused(tmp_path):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with file_modes_enforced(), pytest.raises(RunError, match="cannot write the run directory"):
            rundir.create(parent / "run", config_for(parent / "run"), ENVIRONMENT)
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


def test_default_run_dir_names_model_optimizer_and_time():
    path = rundir.default_run_dir(TrainConfig(model="cnn", optimizer="sgd"))
    assert path.parent == Path("runs")
    assert re.fullmatch(r"cnn-sgd-\d{8}-\d{6}", path.name), path.name


# --- reading it back -------------------------------------------------------------------------------------


def test_load_config_of_a_folder_without_a_run(tmp_path):
    with pytest.raises(RunError, match="missing"):
        rundir.load_config(tmp_path)


def test_load_config_of_a_damaged_config(tmp_path):
    (tmp_path / rundir.CONFIG).write_text('{"model": "lstm",')
    with pytest.raises(RunError, match="damaged") as caught:
        rundir.load_config(tmp_path)
    assert rundir.CONFIG in str(caught.value)


def test_load_config_with_unknown_settings(tmp_path):
    (tmp_path / rundir.CONFIG).write_text(json.dumps({"model": "lstm", "warp_speed": 9}))
    with pytest.raises(RunError, match="not a digitlab config.*warp_speed"):
        rundir.load_config(tmp_path)


def test_load_config_of_a_json_list(tmp_path):
    (tmp_path / rundir.CONFIG).write_text("[1, 2]")
    with pytest.raises(RunError, match="not a digitlab config"):
        rundir.load_config(tmp_path)


def test_a_run_without_result_is_unfinished(tmp_path):
    rundir.create(tmp_path / "run", config_for(tmp_path / "run"), ENVIRONMENT)
    assert not rundir.is_finished(tmp_path / "run")


def test_result_json_marks_a_run_finished(tmp_path):
    rundir.create(tmp_path / "run", config_for(tmp_path / "run"), ENVIRONMENT)
    (tmp_path / "run" / rundir.RESULT).write_text("{}")
    assert rundir.is_finished(tmp_path / "run")


def test_a_missing_folder_is_unfinished(tmp_path):
    assert not rundir.is_finished(tmp_path / "none")


# --- weights ---------------------------------------------------------------------------------------------


def test_weights_round_trip_with_their_metadata(tmp_path):
    model = torch.nn.Linear(4, 3)
    info = {"model": "mlp", "image_shape": [2, 2], "num_classes": 3}
    rundir.save_weights(tmp_path, model, info)
    tensors, metadata = rundir.read_weights(tmp_path)
    assert metadata == info
    other = torch.nn.Linear(4, 3)
    rundir.apply_weights(tmp_path, other, tensors)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_reading_missing_weights_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match=rundir.WEIGHTS):
        rundir.read_weights(tmp_path)


def test_reading_cut_off_weights_is_a_run_error(tmp_path):
    rundir.save_weights(tmp_path, torch.nn.Linear(40, 30), {})
    path = tmp_path / rundir.WEIGHTS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RunError, match="damaged"):
        rundir.read_weights(tmp_path)


def test_weights_of_another_model_are_refused(tmp_path):
    rundir.save_weights(tmp_path, torch.nn.Linear(4, 3), {})
    tensors, _ = rundir.read_weights(tmp_path)
    with pytest.raises(RunError, match="does not fit") as caught:
        rundir.apply_weights(tmp_path, torch.nn.Linear(4, 5), tensors)
    assert rundir.WEIGHTS in str(caught.value)
