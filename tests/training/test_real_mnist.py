"""Training on the real MNIST, from the read-only copy beside the repository (shared/data/mnist); skipped
without it. The `slow` one (two epochs twice, about a minute on 2 cores) runs with `make test-all`."""

from __future__ import annotations

import json

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.store import rundir
from digitlab.store.checkpoint import load_tensors
from digitlab.store.files import read_rows
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


@pytest.mark.slow
def test_a_real_run_stopped_after_its_first_epoch_resumes_to_the_same_weights(tmp_path):
    # Table 4's settings (batch 500) for two epochs of the whole training set, once straight through and once
    # stopped after the first epoch and resumed: on the CPU the weights and every epoch's numbers are identical.
    settings = dict(batch_size=500, data_dir=str(REAL_MNIST), progress="none", threads=2)
    whole = fit(TrainConfig(epochs=2, run_dir=str(tmp_path / "whole"), **settings), log=lambda *a: None)
    part = fit(TrainConfig(epochs=1, run_dir=str(tmp_path / "part"), **settings), log=lambda *a: None)
    fit(TrainConfig(epochs=2, run_dir=str(part), **settings), resuming=True, log=lambda *a: None)
    first, second = (load_tensors(run / rundir.WEIGHTS)[0] for run in (whole, part))
    assert first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)
    rows = [[{k: v for k, v in row.items() if "seconds" not in k and "pressure" not in k} for row in
             read_rows(run / rundir.METRICS)] for run in (whole, part)]  # fmt: skip
    assert len(rows[0]) == 2 and rows[0] == rows[1]
    assert rows[0][-1]["test/acc"] > 0.95
