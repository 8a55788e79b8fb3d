"""fit()'s evaluation hook: it sees every validation evaluation (mid-epoch and the epoch's own) and may stop the
run there, which then finishes; --test-eval none never evaluates the test set (a search's trials)."""

from __future__ import annotations

import json

import pytest

from digitlab.config import TrainConfig
from digitlab.store import rundir
from digitlab.store.files import read_rows
from digitlab.training import metrics
from digitlab.training.fit import fit


def quiet(*args, **kwargs):
    pass


def config_for(data_dir, run_dir, **changes) -> TrainConfig:
    # 300 - 100 examples, batch 50: 4 steps per epoch; an evaluation every 2 steps: 2 per epoch
    settings = dict(
        model="mlp", hidden_size=16, num_layers=1, batch_size=50, epochs=3, val_size=100, eval_every=2,
        data_dir=str(data_dir), run_dir=str(run_dir), threads=1, progress="none", device="cpu",
    )  # fmt: skip
    return TrainConfig(**(settings | changes))


def test_the_hook_sees_every_evaluation_as_recorded(session_data_dir, tmp_path):
    seen = []
    run = fit(config_for(session_data_dir, tmp_path / "run"), log=quiet, on_evaluation=lambda row: seen.append(row))
    assert [row["epoch"] for row in seen] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert seen == read_rows(run / rundir.EVALUATIONS)
    assert all("val/acc" in row and "train_seconds" in row for row in seen)


@pytest.mark.parametrize("stop_at, epochs", [(1.5, 2), (2.0, 2)])  # mid-epoch, and at an epoch's end
def test_the_hook_stops_the_run_and_it_finishes_there(session_data_dir, tmp_path, stop_at, epochs):
    lines = []
    run = fit(
        config_for(session_data_dir, tmp_path / "run"),
        log=lines.append,
        on_evaluation=lambda row: row["epoch"] >= stop_at,
    )
    result = json.loads((run / rundir.RESULT).read_text())
    assert result["stopped_early"] is True and result["epochs"] == epochs
    assert read_rows(run / rundir.EVALUATIONS)[-1]["epoch"] == stop_at
    assert any("the evaluation hook asked to" in line for line in lines)


def test_test_eval_none_never_evaluates_the_test_set(session_data_dir, tmp_path, monkeypatch):
    splits = []
    evaluated = metrics._evaluated

    def recording(session, split, images, labels):
        splits.append(split)
        return evaluated(session, split, images, labels)

    monkeypatch.setattr(metrics, "_evaluated", recording)
    run = fit(config_for(session_data_dir, tmp_path / "run", test_eval="none", epochs=1), log=quiet)
    assert set(splits) == {"val"}
    assert json.loads((run / rundir.RESULT).read_text())["test"] == {}
