"""TrainConfig (digitlab.config): what a resumed run may change, the flags, validation, saving and loading."""

from __future__ import annotations

import dataclasses
import json

import pytest

from digitlab.config import RESUMABLE_CHANGES, SPEED_ONLY, TrainConfig, flag
from digitlab.errors import ConfigError


def test_resumable_changes_are_those_that_leave_the_computation_alone():
    assert RESUMABLE_CHANGES == {
        "epochs", "run_dir", "progress", "data_dir", "checkpoint_every", "keep_checkpoints", "device",
        "eval_batch_size", "divergence_factor", "dataset", "eval_every", "target_acc", "test_eval", "check_every",
    }  # fmt: skip


def test_speed_only_settings():
    assert SPEED_ONLY == {"threads", "micro_batch", "check_every"}


def test_every_field_has_a_group_and_help():
    for field in dataclasses.fields(TrainConfig):
        assert field.metadata["group"] and field.metadata["help"], field.name


def _help(name: str) -> str:
    return next(field.metadata["help"] for field in dataclasses.fields(TrainConfig) if field.name == name)


def test_the_optimizer_help_names_the_registry():
    from digitlab.optim import OPTIMIZERS

    names = list(OPTIMIZERS)
    assert _help("optimizer") == f"{', '.join(names[:-1])} or {names[-1]} (digitlab.optim)"


def test_help_says_what_a_setting_does_not_what_it_measured():
    for field in dataclasses.fields(TrainConfig):
        assert "measured" not in field.metadata["help"] and "benchmarks/results" not in field.metadata["help"]


def test_flag_of_a_field():
    assert flag("batch_size") == "--batch-size"
    assert flag("lr") == "--lr"


def test_defaults_are_valid():
    assert TrainConfig().validate() == TrainConfig()


def test_validate_leaves_the_device_to_parse_device():
    # training.device.parse_device refuses it when a run starts (see training/test_device.py).
    TrainConfig(device="tpu").validate()


def test_validate_passes_on_the_models_own_refusal():
    with pytest.raises(ConfigError, match="the cnn has exactly 2 fully connected layers"):
        TrainConfig(model="cnn", num_layers=3).validate()


def test_dict_round_trip():
    config = TrainConfig(model="gru", hidden_size=7, lr=0.5, data_dir="/data", deterministic=True)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_unknown_settings_are_refused():
    with pytest.raises(ConfigError, match=r"unknown settings \['warp_speed'\]"):
        TrainConfig.from_dict({"model": "lstm", "warp_speed": 9})


def test_loading_a_damaged_file_is_a_config_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model": ')
    with pytest.raises(ConfigError, match="cannot read run config"):
        TrainConfig.load(tmp_path / "config.json")


def test_replace_returns_a_new_config():
    config = TrainConfig()
    changed = config.replace(epochs=3)
    assert (config.epochs, changed.epochs) == (1, 3)
