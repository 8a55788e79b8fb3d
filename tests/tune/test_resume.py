"""A study killed mid-trial (SIGKILL: no chance to clean up) continues with the same command: the finished trials
are kept, not repeated, the killed one runs again with its parameters, and the study reaches its --trials."""

from __future__ import annotations

import subprocess
import time

import pytest

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402

from digitlab.store import rundir  # noqa: E402
from digitlab.tune import storage  # noqa: E402
from helpers import write_dataset  # noqa: E402


def load(out):
    return optuna.load_study(study_name="mlp", storage=storage.open_storage(f"sqlite:///{out / 'study.db'}"))


def test_a_study_killed_mid_trial_resumes_without_losing_or_repeating_a_trial(
    tmp_path, space_file, tiny_space, tune_argv, digitlab_process
):
    # Longer trials than the other tests' (1,000 images, 5 epochs: half a second), so that the kill lands in one.
    data, out = write_dataset(tmp_path / "data", n_train=1000), tmp_path / "study"
    space = space_file(tiny_space(lr="{ low = 1e-3, high = 1e-2, log = true }", dropout=None))
    argv = digitlab_process(tune_argv(data, out, space, "--trials", "3", "--epochs", "5", "--no-retrain"))
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second_trial = out / "trials" / "1" / rundir.EVALUATIONS  # trial 1 has begun to train
    deadline = time.monotonic() + 120
    while not second_trial.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    first.kill()
    printed = first.communicate()[0]
    assert second_trial.exists(), printed
    before = load(out).get_trials()
    assert [t.state for t in before] == [TrialState.COMPLETE, TrialState.RUNNING], printed  # killed in trial 1
    kept = (out / "trials" / "0" / rundir.RESULT).stat().st_mtime_ns

    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    print(again.stdout)
    assert "trial 1 was left running by a process that has ended" in again.stdout
    assert [line.split("]")[0] for line in again.stdout.splitlines() if line.startswith("[")] == ["[2/3", "[3/3"]

    after = load(out).get_trials()
    finished = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert [t.number for t in finished] == [0, 2, 3]  # 3 finished trials, each once
    assert after[0].datetime_complete == before[0].datetime_complete and after[0].value == before[0].value
    assert (out / "trials" / "0" / rundir.RESULT).stat().st_mtime_ns == kept  # trial 0 was not run again
    assert after[1].state == TrialState.FAIL and after[2].params == before[1].params  # re-run with its parameters
    assert after[2].system_attrs["failed_trial"] == 1
    assert sorted(p.name for p in (out / "trials").iterdir() if rundir.is_finished(p)) == ["0", "2", "3"]
