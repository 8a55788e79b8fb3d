"""The run directory's lock (digitlab.store.lock): a second process is refused with the holder's pid before
it touches anything, any exit of the holder (kill -9 included) releases it, and old run directories (which
have no lock file) still resume and evaluate."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.cli import main
from digitlab.errors import RunError
from digitlab.store import lock, rundir
from digitlab.store.files import read_rows
from helpers import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "run-v0.1.0"
HOLD = "import sys\nfrom digitlab.store.lock import holding\nwith holding(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n"  # noqa: E501


def hold_elsewhere(run_dir: Path) -> subprocess.Popen:
    """Another process that takes the lock through the library and holds it until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


def test_lock_writes_the_holders_pid_and_refuses_a_second_holder(tmp_path):
    run_dir = tmp_path / "new" / "run"
    with lock.holding(run_dir):
        assert (run_dir / lock.LOCK).read_text().split()[0] == str(os.getpid())
        with pytest.raises(RunError, match=f"pid {os.getpid()} is training in it"):
            with lock.holding(run_dir):  # another open file: refused even within one process
                pass
    with lock.holding(run_dir):  # released at the end of the block
        pass


def test_unwritable_place_is_refused_in_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="cannot write the run directory"):
        with lock.holding(tmp_path / "file" / "run"):
            pass


def test_resume_and_new_run_are_refused_while_another_process_holds_the_lock(run_copy, session_data_dir, capsys):
    holder = hold_elsewhere(run_copy)
    try:
        before = snapshot(run_copy)
        code = main(["train", "--resume", str(run_copy), "--epochs", "3", "--data-dir", str(session_data_dir)])
        error = capsys.readouterr().err
        assert code == 2
        (line,) = [line for line in error.splitlines() if line.startswith("digitlab: error: ")]  # one line
        assert f"pid {holder.pid} is training in it" in line and "Traceback" not in error, error
        # A new run into the same folder: refused for the same reason, without suggesting --resume.
        new_run = ["train", "--model", "lstm", "--hidden-size", "16", "--num-layers", "1", "--epochs", "1",
                   "--data-dir", str(session_data_dir), "--run-dir", str(run_copy), "--progress", "none"]  # fmt: skip
        code = main(new_run)
        error = capsys.readouterr().err
        assert code == 2
        assert f"pid {holder.pid}" in error and "--resume" not in error, error
        assert snapshot(run_copy) == before  # nothing of the held run was touched
    finally:
        holder.communicate("")
    # The holder ended by itself: the lock is free again.
    assert main(["train", "--resume", str(run_copy), "--epochs", "2", "--data-dir", str(session_data_dir)]) == 0


def test_kill_9_of_the_holder_releases_the_lock(run_copy, session_data_dir):
    holder = hold_elsewhere(run_copy)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (run_copy / lock.LOCK).read_text().split()[0] == str(holder.pid)  # the file stays; the lock does not
    assert main(["train", "--resume", str(run_copy), "--epochs", "2", "--data-dir", str(session_data_dir)]) == 0
    assert [row["epoch"] for row in read_rows(run_copy / rundir.METRICS)] == [1, 2]


def test_old_run_directory_without_a_lock_file_resumes_and_evaluates(tmp_path, make_dataset):
    run = tmp_path / "old"
    shutil.copytree(FIXTURE, run)
    data = make_dataset("data", gz=True)
    assert not (run / lock.LOCK).exists()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--data-dir", str(data)]) == 0
    assert (run / lock.LOCK).exists()
    assert main(["evaluate", str(run), "--data-dir", str(data)]) == 0
    assert main(["predict", str(run), "--test-samples", "1", "--data-dir", str(data)]) == 0
