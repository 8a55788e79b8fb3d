"""benchmarks/recipes.py: the table of a recipe's seeds (mean ± std, minutes, time-to-99%) from run directories."""

from __future__ import annotations

import json
import statistics

import pytest

from digitlab.config import TrainConfig
from digitlab.store import rundir
from digitlab.store.files import append_rows, read_json
from digitlab.training.fit import fit


@pytest.fixture
def script(load_script):
    return load_script("recipes")


def tiny_run(data_dir, run_dir, seed):
    config = TrainConfig(
        model="mlp", hidden_size=8, num_layers=1, batch_size=20, epochs=2, val_size=40, eval_every=5, seed=seed,
        data_dir=str(data_dir), run_dir=str(run_dir), threads=1, progress="none", device="cpu", test_eval="final",
    )  # fmt: skip
    return fit(config, log=lambda *args: None)


def test_summary_of_seeds(script, session_data_dir, tmp_path):
    runs = [tiny_run(session_data_dir, tmp_path / f"fast-s{seed}", seed) for seed in (0, 1)]
    # The first run reached 99% at its second evaluation: written in as if it had.
    rows = (runs[0] / rundir.EVALUATIONS).read_text().splitlines()
    (runs[0] / rundir.EVALUATIONS).unlink()
    append_rows(runs[0] / rundir.EVALUATIONS, [json.loads(row) for row in rows[:1]])
    append_rows(
        runs[0] / rundir.EVALUATIONS, [{"epoch": 0.7, "global_step": 10, "train_seconds": 4.5, "val/acc": 0.991}]
    )
    summary = script.summarize("fast", runs)
    accuracies = [read_json(run / rundir.RESULT)["test"]["test/acc"] for run in runs]
    assert summary["test_acc_mean"] == pytest.approx(statistics.mean(accuracies))
    assert summary["test_acc_std"] == pytest.approx(statistics.stdev(accuracies))
    assert summary["runs"][0]["time_to_99_seconds"] == 4.5
    assert summary["time_to_99_reached"] == 1 and summary["time_to_99_seconds_mean"] is None
    text = script.table([summary], [0, 1])
    assert "| `fast` | vgg |" in text and "reached in 1 of 2" in text


def test_a_finished_run_is_kept(script, session_data_dir, tmp_path):
    run = tiny_run(session_data_dir, tmp_path / "done", 0)
    before = (run / rundir.RESULT).read_text()
    script.train("fast", 0, run, None)  # finished: nothing is run again
    assert (run / rundir.RESULT).read_text() == before
