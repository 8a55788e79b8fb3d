"""benchmarks/cpu_speedrun.py: it runs each recipe per seed in turn through `digitlab train`, reads each run's own
clock and accuracies, narrows the training processes' kernels when asked to imitate an older CPU, reports ratios
against the first recipe, and keeps finished runs when started again."""

from __future__ import annotations

import json

import pytest

from helpers import write_dataset


@pytest.fixture(scope="module")
def data_300(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("cpu_speedrun") / "data", n_train=300, n_test=40)


def test_each_recipe_runs_in_turn_narrowed_to_avx2_and_is_kept_when_run_again(load_script, data_300, tmp_path):
    script = load_script("cpu_speedrun")
    argv = ["--recipes", "fast,speedrun", "--seeds", "3,", "--imitate", "avx2", "--data-dir", str(data_300)]
    argv += ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--stem", "speed"]
    argv += ["--train-flags", "--val-size 50 --train-limit 250 --threads 1"]
    assert script.main(argv) == 0
    result = json.loads((tmp_path / "out" / "speed.json").read_text())
    assert [(run["recipe"], run["seed"]) for run in result["runs"]] == [("fast", 3), ("speedrun", 3)]
    for run in result["runs"]:
        assert run["cpu_kernels"]["onednn_max_isa"] == "AVX2" and run["cpu_kernels"]["bf16_native"] is False
        assert run["precision"] == "fp32"  # auto, where bf16 is not native
        assert 0 < run["train_seconds"] < run["wall_seconds"] and 0 <= run["test_acc"] <= 1
    fast, speedrun = result["summaries"]
    assert fast["ratio_train"] == 1.0
    assert speedrun["ratio_train"] == pytest.approx(speedrun["train_seconds"] / fast["train_seconds"])
    text = (tmp_path / "out" / "speed.md").read_text()
    assert "imitated avx2" in text and "| `speedrun` | fp32 |" in text

    first = {run["run_dir"]: run["wall_seconds"] for run in result["runs"]}
    assert script.main(argv) == 0  # again: nothing retrained, the same figures
    again = json.loads((tmp_path / "out" / "speed.json").read_text())
    assert {run["run_dir"]: run["wall_seconds"] for run in again["runs"]} == first
