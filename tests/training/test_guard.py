"""The deferred step check (training.guard, --check-every N > 1), exercised on the CPU. It must compute exactly
what the immediate check does: the same weights when nothing goes wrong, and, when a step goes bad, the same
stop, rows and checkpoint, the bad step and the steps after it undone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.errors import TrainingError
from digitlab.store import checkpoint, rundir
from digitlab.store.files import read_rows
from digitlab.training import guard
from digitlab.training.fit import fit


def quiet(*args, **kwargs):
    pass


def config_for(data_dir: Path, run_dir: Path, **changes) -> TrainConfig:
    settings = dict(
        model="mlp", hidden_size=16, num_layers=1, optimizer="adam", lr=1e-3, batch_size=50, epochs=2,
        data_dir=str(data_dir), run_dir=str(run_dir), threads=1, device="cpu", progress="none", ema_decay=0.9,
    )  # fmt: skip
    return TrainConfig(**(settings | changes))


def run_both(config: TrainConfig) -> list[tuple[Path, TrainingError | None]]:
    """The run with the immediate check, then reading every 4 steps; each run's folder and error."""
    results = []
    for mode, every in (("immediate", 1), ("deferred", 4)):
        run_dir = Path(config.run_dir) / mode
        try:
            fit(config.replace(run_dir=str(run_dir), check_every=every), log=quiet)
            results.append((run_dir, None))
        except TrainingError as error:
            results.append((run_dir, error))
    return results


def same_tensors(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def test_a_sound_run_is_bit_identical_with_deferred_checks(session_data_dir, tmp_path, monkeypatch):
    (immediate, _), (deferred, _) = run_both(config_for(session_data_dir, tmp_path))
    for name in (rundir.WEIGHTS, rundir.AVERAGE_WEIGHTS):
        assert same_tensors(checkpoint.load_tensors(immediate / name)[0], checkpoint.load_tensors(deferred / name)[0])
    assert read_rows(immediate / rundir.STEPS) == read_rows(deferred / rundir.STEPS)


@pytest.mark.parametrize(
    "changes, step",
    [
        (dict(optimizer="sgd", lr=1e30, divergence_factor=0), 2),  # step 2 not finite; sgd keeps no state
        (dict(lr=1e12, divergence_factor=1000), 2),  # adam: step 1 makes its state; step 2's loss explodes
    ],
)
def test_a_bad_step_found_late_is_undone(session_data_dir, tmp_path, monkeypatch, changes, step):
    (immediate, first_error), (deferred, second_error) = run_both(config_for(session_data_dir, tmp_path, **changes))
    assert first_error is not None and second_error is not None
    assert f"step {step} (global step {step})" in str(second_error)
    assert str(first_error).replace("immediate", "deferred") == str(second_error)
    assert read_rows(immediate / rundir.STEPS) == read_rows(deferred / rundir.STEPS)
    first = checkpoint.list_checkpoints(immediate / rundir.CHECKPOINTS)
    second = checkpoint.list_checkpoints(deferred / rundir.CHECKPOINTS)
    assert [p.name for p in first] == [p.name for p in second] == [f"step-{step - 1:09d}.safetensors"]
    kept = [checkpoint.load_tensors(path)[0] for path in (first[0], second[0])]
    weights = [{name: value for name, value in tensors.items() if not name.startswith("rng.")} for tensors in kept]
    assert same_tensors(*weights)  # weights, optimizer state and average: as they were before the bad step


def test_a_bad_step_in_the_middle_of_a_window(session_data_dir, tmp_path, monkeypatch):
    # Steps after the bad one were computed before it was read; they are thrown away with it.
    calls = []
    original = guard.StepGuard.read_if_due

    def read_if_due(self, step, force):
        verdict = original(self, step, force)
        calls.append((step, verdict))
        return verdict

    monkeypatch.setattr(guard.StepGuard, "read_if_due", read_if_due)
    with pytest.raises(TrainingError, match=r"step 2 \(global step 2\)"):
        config = config_for(session_data_dir, tmp_path / "run", optimizer="sgd", lr=1e30, divergence_factor=0)
        fit(config.replace(check_every=4), log=quiet)
    read = [(step, verdict.bad_step) for step, verdict in calls if verdict is not None]
    assert read == [(3, 1)]  # steps 1-4 (0-based 0-3) ran; step 2 (0-based 1) was bad and undone at the read
    assert len(read_rows(tmp_path / "run" / rundir.STEPS)) == 1
