"""Loading a finished run's model (digitlab.inference.load); its refusals are tested through the CLI
(tests/test_cli.py: evaluate and predict of damaged or unfinished runs)."""

from __future__ import annotations

import pytest
import torch

from digitlab.inference.load import load_model
from digitlab.models import LSTMClassifier
from digitlab.store import rundir


def test_load_model_builds_the_runs_model_in_eval_mode(trained_run):
    model, info = load_model(trained_run)
    assert isinstance(model, LSTMClassifier) and not model.training
    assert (model.lstm.hidden_size, model.lstm.num_layers) == (16, 1)
    assert info == {
        "model": "lstm",
        "image_shape": [28, 28],
        "num_classes": 10,
        "dataset": "custom",
        "class_names": None,
        "weights": "model.safetensors",
    }


def test_load_model_holds_the_saved_weights(trained_run):
    model, _ = load_model(trained_run)
    saved, _ = rundir.read_weights(trained_run)
    assert all(torch.equal(value, saved[name]) for name, value in model.state_dict().items())


def test_a_run_without_a_weight_average_refuses_ema(trained_run):
    from digitlab.errors import RunError

    with pytest.raises(RunError, match="no weight average"):
        load_model(trained_run, weights="ema")
