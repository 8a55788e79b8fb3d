"""A run directory written by digitlab 0.1.0, before the package was regrouped, still evaluates and
resumes (tests/fixtures/README.md says how it was made)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from digitlab.cli import main
from digitlab.config import TrainConfig
from digitlab.data.dataset import load, normalize
from digitlab.inference.load import load_model
from digitlab.training.evaluate import evaluate
from digitlab.training.fit import fit
from helpers import REPO_ROOT, write_dataset

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "run-v0.1.0"
# What 0.1.0 printed for the same config run for 3 epochs without a break (tests/fixtures/README.md).
GOLDEN_TRAIN_LOSS, GOLDEN_TEST_LOSS = 0.4796911378701528, 0.2508859062194824


@pytest.fixture
def old_run(tmp_path) -> tuple[Path, Path]:
    """A copy of the fixture and the synthetic data it was trained on."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    return run, write_dataset(tmp_path / "data", gz=True)


def final(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())["final"]


def test_old_run_evaluates_to_its_recorded_numbers(old_run):
    run, data = old_run
    model, info = load_model(run)
    dataset = load(data, log=lambda *args: None)
    result = evaluate(model, normalize(dataset.test_images), dataset.test_labels, 2000)
    assert result["accuracy"] == pytest.approx(final(run)["test/acc"], abs=1e-6)
    assert result["loss"] == pytest.approx(final(run)["test/loss"], rel=1e-5)


def test_old_run_resumes_to_the_numbers_0_1_0_gave(old_run, capsys):
    run, data = old_run
    assert main(["train", "--resume", str(run), "--epochs", "3", "--data-dir", str(data)]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    # Other CPUs round differently: near 0.1.0's numbers everywhere, equal to them on the machine that made them.
    assert final(run)["train/loss"] == pytest.approx(GOLDEN_TRAIN_LOSS, rel=1e-3)
    assert final(run)["test/loss"] == pytest.approx(GOLDEN_TEST_LOSS, rel=1e-3)


def test_old_config_runs_unchanged_in_this_version(old_run):
    """The fixture's config.json, run afresh for 3 epochs, lands where resuming the fixture does."""
    run, data = old_run
    config = TrainConfig.load(run / "config.json").replace(epochs=3, data_dir=str(data), run_dir=str(run.parent / "a"))
    fresh = fit(config, log=lambda *args, **kwargs: None)
    assert final(fresh)["train/loss"] == pytest.approx(GOLDEN_TRAIN_LOSS, rel=1e-3)
    assert final(fresh)["test/loss"] == pytest.approx(GOLDEN_TEST_LOSS, rel=1e-3)
