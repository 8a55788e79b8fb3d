"""Training on the real MNIST, from the read-only copy beside the repository (shared/data/mnist); skipped
without it."""

from __future__ import annotations

import json

import pytest

from digitlab.config import TrainConfig
from digitlab.store import rundir
from digitlab.training.fit import fit
from helpers import NAMES, REAL_MNIST

pytestmark = pytest.mark.skipif(
    not all((REAL_MNIST / f"{name}.gz").is_file() for name in NAMES.values()), reason=f"no MNIST copy at {REAL_MNIST}"
)


def test_paper_lstm_one_epoch_beats_90_percent(tmp_path):
    # The default config is the paper's: LSTM 2x128, Adam, lr 0.001, batch 100, one epoch of 60000 images.
    config = TrainConfig(data_dir=str(REAL_MNIST), run_dir=str(tmp_path / "run"), progress="none")
    assert (config.model, config.optimizer, config.lr, config.batch_size, config.epochs) == (
        "lstm", "adam", 0.001, 100, 1,
    )  # fmt: skip
    run_dir = fit(config, log=lambda *a: None)
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert result["epochs"] == 1
    assert result["final"]["global_step"] == 600
    assert result["final"]["test/acc"] > 0.90
    env = json.loads((run_dir / rundir.ENV).read_text())
    assert env["data_verified"] is True
