"""TensorBoard event files (store.events): a run's rows read back with TensorBoard's own reader match its JSON
lines; a resumed run shows no step twice; DIGITLAB_TENSORBOARD=0 or a missing package writes nothing."""

from __future__ import annotations

import json
import sys

import pytest

from digitlab.config import TrainConfig
from digitlab.data.dataset import load
from digitlab.schedules import learning_rate
from digitlab.store import events, rundir
from digitlab.store.files import read_rows
from digitlab.training.fit import fit


def tiny(run_dir, **changes) -> TrainConfig:
    settings = dict(
        model="mlp", hidden_size=16, num_layers=1, batch_size=25, epochs=2, lr=0.01, run_dir=str(run_dir), threads=1,
        device="cpu", progress="none", train_limit=150, test_limit=50,
    )  # fmt: skip
    return TrainConfig(**(settings | changes))


@pytest.fixture(autouse=True)
def automatic(monkeypatch):
    """Event files as they come by default: DIGITLAB_TENSORBOARD unset."""
    monkeypatch.delenv(events.SWITCH, raising=False)


@pytest.fixture(scope="module")
def dataset(session_data_dir):
    return load(session_data_dir, log=lambda *args, **kwargs: None)


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] as TensorBoard reads the run's event files."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / events.FOLDER))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def approx(pairs):
    return [(step, pytest.approx(value, rel=1e-6, abs=1e-7)) for step, value in pairs]


def test_event_files_hold_the_runs_rows(dataset, tmp_path):
    pytest.importorskip("tensorboard")
    config = tiny(tmp_path / "run", val_size=50, eval_every=2, schedule="cosine", warmup=0.2)
    run = fit(config, dataset=dataset, log=lambda *a, **k: None)
    found = scalars(run)
    steps, epochs = read_rows(run / rundir.STEPS), read_rows(run / rundir.METRICS)
    evaluations = read_rows(run / rundir.EVALUATIONS)
    assert set(found) == {
        "train/loss", "lr", "train/epoch_loss", "train/seconds", "eval/seconds", "setup/seconds", "test/loss",
        "test/acc", "val/loss", "val/acc", "cpu_pressure_avg10",
    } - ({"cpu_pressure_avg10"} if epochs[0]["cpu_pressure_avg10"] is None else set())  # fmt: skip
    assert found["train/loss"] == approx([(row["global_step"], row["train/loss"]) for row in steps])
    total = len(steps)
    assert found["lr"] == approx(
        [(s, learning_rate("cosine", 0.01, s - 1, total, 0.2)) for s in range(1, total + 1)]
    )  # the cosine schedule, one value per step
    assert len({value for _, value in found["lr"]}) > 2
    for tag, key in (("train/epoch_loss", "train/loss"), ("test/acc", "test/acc"), ("train/seconds", "train/seconds")):
        assert found[tag] == approx([(row["global_step"], row[key]) for row in epochs])
    # Every validation evaluation (every 2 steps and at the epochs' ends), each step once.
    assert found["val/acc"] == approx([(row["global_step"], row["val/acc"]) for row in evaluations])
    assert len(found["val/acc"]) > len(epochs)


def test_resumed_run_shows_each_step_once(dataset, tmp_path):
    pytest.importorskip("tensorboard")
    run = fit(tiny(tmp_path / "run"), dataset=dataset, log=lambda *a, **k: None)
    # What a process killed after its last checkpoint leaves: events of steps that the resumed run takes again
    # (here a copy of the whole file, so that every step would show twice).
    (written,) = (run / events.FOLDER).glob("events.out.tfevents.*")
    (run / events.FOLDER / "events.out.tfevents.1.killed.0").write_bytes(written.read_bytes())
    fit(tiny(tmp_path / "run", epochs=3), dataset=dataset, resuming=True, log=lambda *a, **k: None)
    found = scalars(run)
    steps = read_rows(run / rundir.STEPS)
    assert (
        [step for step, _ in found["train/loss"]] == list(range(1, len(steps) + 1)) == [r["global_step"] for r in steps]
    )
    assert found["train/loss"] == approx([(row["global_step"], row["train/loss"]) for row in steps])
    epochs = read_rows(run / rundir.METRICS)
    assert len(epochs) == 3
    assert found["train/epoch_loss"] == approx([(row["global_step"], row["train/loss"]) for row in epochs])
    assert len(list((run / events.FOLDER).glob("events.out.tfevents.*"))) == 1


def test_test_evaluated_once_at_the_end(dataset, tmp_path):
    pytest.importorskip("tensorboard")
    run = fit(tiny(tmp_path / "run", test_eval="final"), dataset=dataset, log=lambda *a, **k: None)
    found = scalars(run)
    last = read_rows(run / rundir.METRICS)[-1]
    final = json.loads((run / rundir.RESULT).read_text())["test"]
    assert "test/acc" not in last
    assert found["test/acc"] == approx([(last["global_step"], final["test/acc"])])


def test_switched_off_by_the_environment(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv(events.SWITCH, "0")
    run = fit(tiny(tmp_path / "run", epochs=1), dataset=dataset, log=lambda *a, **k: None)
    assert not (run / events.FOLDER).exists()


@pytest.mark.parametrize("setting", ["", "1"])
def test_without_the_package_nothing_is_written(dataset, tmp_path, monkeypatch, setting):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    monkeypatch.setenv(events.SWITCH, setting)
    lines = []
    run = fit(tiny(tmp_path / "run", epochs=1), dataset=dataset, log=lines.append)
    assert not (run / events.FOLDER).exists()
    said = [line for line in lines if "tensorboard" in str(line)]
    if setting == "":
        assert said == []  # not asked for: not a word
    else:
        assert len(said) == 1 and "pip install 'digitlab[tensorboard]'" in said[0]
