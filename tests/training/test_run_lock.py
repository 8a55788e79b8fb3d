"""Two real `digitlab train` processes on one run directory: the first trains on to a normal end with its
records in order, while a second one (a new run into the folder, or --resume of it) is refused at once with
the first one's pid and exit code 2."""

from __future__ import annotations

import subprocess
import sys
import time

from digitlab.store import rundir
from digitlab.store.files import read_rows

# About 0.15 s per epoch here: long enough for the refused processes to start, load the data and be refused.
EPOCHS = 100
SETTINGS = ["--model", "lstm", "--hidden-size", "64", "--num-layers", "2", "--batch-size", "10", "--threads", "1",
            "--device", "cpu", "--progress", "none"]  # fmt: skip


def digitlab(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "digitlab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_second_process_is_refused_while_the_first_trains_on(session_data_dir, tmp_path):
    run = tmp_path / "run"
    first = digitlab("train", *SETTINGS, "--epochs", str(EPOCHS), "--data-dir", str(session_data_dir),
                     "--run-dir", str(run))  # fmt: skip
    deadline = time.monotonic() + 120
    while not read_rows(run / rundir.METRICS):  # it holds the lock and has written an epoch
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first run wrote no epoch in time"
        time.sleep(0.05)
    resume = digitlab("train", "--resume", str(run), "--epochs", str(EPOCHS), "--data-dir", str(session_data_dir))
    new = digitlab("train", *SETTINGS, "--epochs", "2", "--data-dir", str(session_data_dir), "--run-dir", str(run))
    for second in (resume, new):
        out, error = second.communicate(timeout=120)
        assert second.returncode == 2, out + error
        (line,) = [line for line in error.splitlines() if line.startswith("digitlab: error: ")]  # one line
        assert f"pid {first.pid} is training in it" in line and "Traceback" not in error, error
        assert "--resume" not in error  # the folder is busy, not merely unfinished
    assert first.poll() is None, "the first run ended before the others were refused: raise EPOCHS"
    out, error = first.communicate(timeout=300)
    assert first.returncode == 0, out + error
    assert [row["epoch"] for row in read_rows(run / rundir.METRICS)] == list(range(1, EPOCHS + 1))
    steps = [row["global_step"] for row in read_rows(run / rundir.STEPS)]
    assert steps == list(range(1, EPOCHS * 30 + 1))
    assert rundir.is_finished(run)
