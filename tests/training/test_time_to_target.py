"""--target-acc: stops at the first validation evaluation that reaches the target and records the training
seconds it took; a run that never reaches it says so."""

from __future__ import annotations

import json

import pytest

from digitlab.config import TrainConfig
from digitlab.store import rundir
from digitlab.store.files import read_rows
from digitlab.training import fit as fit_module
from digitlab.training.fit import fit

SCRIPT = [0.50, 0.80, 0.95, 0.99, 0.97]  # the validation accuracies the scripted evaluations return


def config_for(data_dir, run_dir, **changes) -> TrainConfig:
    settings = dict(
        model="mlp", hidden_size=8, num_layers=1, batch_size=20, epochs=3, val_size=40, target_acc=0.95,
        eval_every=2, data_dir=str(data_dir), run_dir=str(run_dir), threads=1, progress="none", device="cpu",
    )  # fmt: skip
    return TrainConfig(**(settings | changes))


@pytest.fixture
def scripted(monkeypatch):
    """Mid-epoch evaluations return SCRIPT in turn, each with 10 s more training time than the last."""
    calls = []

    def validation_row(session, splits, position, steps_per_epoch):
        calls.append(position.global_step)
        accuracy = SCRIPT[len(calls) - 1]
        return {
            "epoch": position.epoch + position.step / steps_per_epoch, "global_step": position.global_step,
            "train_seconds": 10.0 * len(calls), "val/acc": accuracy, "val/loss": 1 - accuracy,
        }  # fmt: skip

    monkeypatch.setattr(fit_module, "validation_row", validation_row)
    return calls


def test_stops_at_the_first_evaluation_that_reaches_the_target(session_data_dir, tmp_path, scripted):
    lines = []
    # 300 - 40 examples, batch 20: 13 steps per epoch; evaluations at steps 2, 4, 6 (0.95 reached there)
    run = fit(config_for(session_data_dir, tmp_path / "run"), log=lines.append)
    assert scripted == [2, 4, 6]
    result = json.loads((run / rundir.RESULT).read_text())
    assert result["target"] == {
        "accuracy": 0.95, "reached": True, "epoch": pytest.approx(6 / 13), "global_step": 6,
        "train_seconds": 30.0, "val_acc": 0.95,
    }  # fmt: skip
    assert result["stopped_early"] is True
    assert [row["global_step"] for row in read_rows(run / rundir.METRICS)] == [6]  # the epoch, cut short
    assert [row["global_step"] for row in read_rows(run / rundir.EVALUATIONS)] == [2, 4, 6]
    assert any("reached the target" in line for line in lines)
    assert "test/acc" in result["test"]


def test_a_run_that_never_reaches_it_says_so(session_data_dir, tmp_path):
    lines = []
    run = fit(config_for(session_data_dir, tmp_path / "run", target_acc=1.0, epochs=1), log=lines.append)
    result = json.loads((run / rundir.RESULT).read_text())
    assert result["target"] == {"accuracy": 1.0, "reached": False}
    assert any("was not reached in 1 epochs" in line for line in lines)
    evaluations = read_rows(run / rundir.EVALUATIONS)
    assert [row["global_step"] for row in evaluations] == [2, 4, 6, 8, 10, 12, 13]  # 6 mid-epoch, the epoch's end
    seconds = [row["train_seconds"] for row in evaluations]
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(result["train_seconds_total"])


def test_eval_every_defaults_to_a_quarter_epoch(session_data_dir, tmp_path):
    run = fit(config_for(session_data_dir, tmp_path / "run", eval_every=0, target_acc=1.0, epochs=1), log=print)
    assert json.loads((run / rundir.CONFIG).read_text())["eval_every"] == 4  # ceil(13 / 4)
