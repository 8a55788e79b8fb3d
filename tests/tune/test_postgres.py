"""Two `digitlab tune` workers (two processes at once, each with its own study folder, as on two machines) share
one study in a real PostgreSQL server: together they finish exactly --trials trials, none lost, none run twice."""

from __future__ import annotations

import subprocess

import pytest

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402

from digitlab.store import rundir  # noqa: E402
from digitlab.tune import storage  # noqa: E402
from helpers import write_dataset  # noqa: E402

pytestmark = pytest.mark.postgres

TRIALS = 6


def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(
    postgres_url, tmp_path, space_file, tiny_space, tune_argv, digitlab_process
):
    space = space_file(tiny_space(lr="{ low = 1e-3, high = 1e-2, log = true }"))
    data = write_dataset(tmp_path / "data", n_train=500)
    shared = ["--trials", TRIALS, "--storage", postgres_url, "--study-name", "shared", "--no-retrain"]
    workers = [
        subprocess.Popen(
            digitlab_process(tune_argv(data, tmp_path / f"worker{k}", space, *shared)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in (1, 2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for k, output in enumerate(outputs, start=1):
        print(f"--- worker {k} ---\n{output}")
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    trials = optuna.load_study(study_name="shared", storage=storage.open_storage(postgres_url)).get_trials()
    finished = sorted(t.number for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == TRIALS  # exactly --trials, over both workers
    assert all(t.state != TrialState.RUNNING and t.state != TrialState.WAITING for t in trials)
    surplus = [t for t in trials if t.state == TrialState.FAIL]  # only a trial that lost the race for the last one
    assert all(t.user_attrs["failure"].startswith("surplus") and not t.params for t in surplus)
    ran = [
        {int(p.name) for p in (tmp_path / f"worker{k}" / "trials").iterdir() if rundir.is_finished(p)} for k in (1, 2)
    ]
    assert ran[0] and ran[1], "both workers ran trials"
    assert not ran[0] & ran[1] and sorted(ran[0] | ran[1]) == finished  # each trial once, in one worker's folder
    for k, output in enumerate(outputs):
        lines = [line for line in output.splitlines() if line.startswith("[")]
        assert sorted(int(line.split()[2]) for line in lines) == sorted(ran[k])  # "[n/8] trial NUMBER ..."
