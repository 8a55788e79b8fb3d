"""Resuming a run: SIGKILL at random points, kills inside a checkpoint write, damaged checkpoints, SIGTERM,
--deterministic.

The promise under test: on the CPU with the same threads, a run killed at any point and resumed with
`digitlab train --resume RUN_DIR` ends with weights bit-identical to an uninterrupted run's, and its
steps.jsonl and metrics.jsonl continue without duplicated or missing rows.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from digitlab import cli
from digitlab.config import TrainConfig
from digitlab.data.dataset import load
from digitlab.errors import RunError
from digitlab.store import checkpoint, rundir
from digitlab.store.files import read_rows
from digitlab.training.fit import fit
from helpers import write_dataset

KILL_POINTS = 5  # random SIGKILL points that must interrupt training (more are tried if some land too late)
KILL_SEED = 20261126

# A model with dropout, so that a resume that got the random states wrong gives other weights; a checkpoint
# at every step, so that many kills land inside a checkpoint write. 300 examples: 30 steps per epoch.
FLAGS = "--model lstm --num-layers 2 --hidden-size 16 --dropout 0.3 --batch-size 10 --epochs 2 --lr 0.01".split()
FLAGS += "--seed 3 --checkpoint-every 1 --threads 1 --device cpu --progress none".split()
TOTAL_STEPS = 60
# Seconds one subprocess may take; a busy machine (other jobs on the cores) may need more.
TIMEOUT = float(os.environ.get("DIGITLAB_TEST_TIMEOUT", "300"))


def quiet(*args, **kwargs):
    pass


# --- comparing runs ------------------------------------------------------------------------------


def without_timing(row: dict) -> dict:
    """A row without what the machine's speed and load decide (seconds, CPU pressure)."""
    return {k: v for k, v in row.items() if not k.endswith("seconds") and not k.startswith("cpu_pressure")}


def assert_same_run(run_dir: Path, reference: Path) -> None:
    """Bit-identical final weights; the same step and epoch rows, each once, in order."""
    got, _ = rundir.read_weights(run_dir)
    want, _ = rundir.read_weights(reference)
    assert got.keys() == want.keys()
    different = [name for name in want if not torch.equal(got[name], want[name])]
    assert not different, f"weights differ from the uninterrupted run's: {different}"
    assert read_rows(run_dir / rundir.STEPS) == read_rows(reference / rundir.STEPS)
    assert [without_timing(r) for r in read_rows(run_dir / rundir.METRICS)] == [
        without_timing(r) for r in read_rows(reference / rundir.METRICS)
    ]
    logged = [row["global_step"] for row in read_rows(run_dir / rundir.CHECKPOINT_LOG)]
    assert logged == sorted(set(logged)), "a checkpoint is logged twice"
    assert not list(run_dir.glob("**/.*.tmp")), "temporary files were left behind"


def weights_differ(run_dir: Path, reference: Path) -> bool:
    got, _ = rundir.read_weights(run_dir)
    want, _ = rundir.read_weights(reference)
    return any(not torch.equal(got[name], want[name]) for name in want)


def checkpoint_steps(run_dir: Path) -> list[int]:
    return [
        int(checkpoint.CHECKPOINT_NAME.match(p.name).group(1))
        for p in checkpoint.list_checkpoints(run_dir / rundir.CHECKPOINTS)
    ]


# --- subprocesses --------------------------------------------------------------------------------


def environment() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    env["PYTHONUNBUFFERED"] = "1"  # the "training ..." line arrives as it is printed
    return env


def start(args: list[str], program: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *(program or ["-m", "digitlab"]), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(),
    )


def wait_for_training(process: subprocess.Popen) -> list[str]:
    """Read the output up to the line printed just before the first step."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("training "):
            return lines
    process.wait(timeout=TIMEOUT)
    raise AssertionError("the run ended before training began:\n" + "".join(lines))


def finish(process: subprocess.Popen) -> str:
    try:
        return process.communicate(timeout=TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def train_args(data_dir: Path, run_dir: Path) -> list[str]:
    return ["train", *FLAGS, "--data-dir", str(data_dir), "--run-dir", str(run_dir)]


def resume_in_subprocess(run_dir: Path) -> str:
    process = start(["train", "--resume", str(run_dir), "--progress", "none"])
    output = finish(process)
    assert process.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def kill_data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("kill-data"), n_train=300, n_test=100)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, kill_data) -> tuple[Path, float]:
    """The uninterrupted run, as a subprocess; and its seconds from the first step to the process's exit."""
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    process = start(train_args(kill_data, run_dir))
    wait_for_training(process)
    began = time.monotonic()
    output = finish(process)
    seconds = time.monotonic() - began
    assert process.returncode == 0, output
    assert len(read_rows(run_dir / rundir.STEPS)) == TOTAL_STEPS
    return run_dir, seconds


def where_killed(run_dir: Path) -> str:
    if rundir.is_finished(run_dir):
        return "after the run had finished"
    steps = checkpoint_steps(run_dir)
    leftovers = list((run_dir / rundir.CHECKPOINTS).glob(".*.tmp"))
    place = (
        f"newest whole checkpoint at global step {steps[-1]}/{TOTAL_STEPS}" if steps else "before the first checkpoint"
    )
    place += f", {len(read_rows(run_dir / rundir.STEPS))} step rows"
    if leftovers:
        place += ", inside a checkpoint write (its temporary file was left)"
    return place


# --- (a) SIGKILL at random points ----------------------------------------------------------------


def newest_checkpoint(run_dir: Path) -> int:
    """The newest checkpoint's global step, from the folder listing alone (0 when there is none)."""
    folder = run_dir / rundir.CHECKPOINTS
    names = [checkpoint.CHECKPOINT_NAME.match(name) for name in (os.listdir(folder) if folder.is_dir() else [])]
    return max((int(match.group(1)) for match in names if match), default=0)


def test_sigkill_at_random_points_then_resume_gives_identical_weights(
    uninterrupted, kill_data, tmp_path, record_property
):
    reference, seconds = uninterrupted
    step_seconds = seconds / TOTAL_STEPS
    chooser = random.Random(KILL_SEED)
    # A kill point: once the run has checkpointed global step k (one random k in each fifth of the run, so
    # that kills land early, midway and late), a random delay of up to one step's time (measured on the
    # uninterrupted run). Counting steps rather than seconds keeps the points spread when other work on the
    # machine slows the runs down unevenly.
    points = [
        (
            chooser.randrange(i * TOTAL_STEPS // KILL_POINTS, (i + 1) * TOTAL_STEPS // KILL_POINTS),
            chooser.uniform(0, step_seconds),
        )
        for i in range(KILL_POINTS)
    ]
    outcomes, interrupted = [], 0
    while interrupted < KILL_POINTS:
        assert len(outcomes) < KILL_POINTS + 4, f"too few kills landed during training: {outcomes}"
        if not points:  # a kill that came too late (the run had finished): one more, anywhere
            points.append((chooser.randrange(TOTAL_STEPS), chooser.uniform(0, step_seconds)))
        after_step, delay = points.pop(0)
        run_dir = tmp_path / f"killed-{len(outcomes)}"
        process = start(train_args(kill_data, run_dir))
        wait_for_training(process)
        while newest_checkpoint(run_dir) < after_step and process.poll() is None:
            time.sleep(0.0005)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)  # from outside the process: no handler, no clean-up
        finish(process)
        place = where_killed(run_dir)
        interrupted += process.returncode == -signal.SIGKILL and not rundir.is_finished(run_dir)
        output = resume_in_subprocess(run_dir)
        assert ("resuming" in output) or ("starting it from the beginning" in output), output
        assert_same_run(run_dir, reference)
        outcomes.append(
            f"kill {len(outcomes) + 1}: {delay * 1000:.1f} ms after checkpoint {after_step} appeared, "
            f"exit {process.returncode}: {place}; resumed: identical"
        )
    report = "\n".join(outcomes)
    print(
        f"\n{len(outcomes)} kill points, {interrupted} during training, all resumed bit-identically "
        f"(uninterrupted: {seconds:.2f} s of training):\n{report}"
    )
    record_property("kill_points", report)


# --- resuming from every kind of checkpoint, in-process ------------------------------------------


@pytest.fixture(scope="module")
def kill_dataset(kill_data):
    return load(kill_data, log=quiet)


def config_for(run_dir: Path, **changes) -> TrainConfig:
    """FLAGS as a config (the in-process runs)."""
    settings = dict(
        model="lstm", num_layers=2, hidden_size=16, dropout=0.3, batch_size=10, epochs=2, lr=0.01, seed=3,
        checkpoint_every=1, threads=1, device="cpu", progress="none", run_dir=str(run_dir),
    )  # fmt: skip
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def all_checkpoints(tmp_path_factory, kill_dataset) -> Path:
    """An uninterrupted in-process run that kept every checkpoint."""
    run_dir = tmp_path_factory.mktemp("every-checkpoint") / "run"
    return fit(config_for(run_dir, keep_checkpoints=1000), dataset=kill_dataset, log=quiet)


def as_if_killed_after(source: Path, global_step: int | None, destination: Path) -> Path:
    """A copy of a finished run as a kill right after checkpoint `global_step` leaves it (None: before the
    first): newer checkpoints and the final files gone, step and epoch rows past the checkpoint still there."""
    shutil.copytree(source, destination)
    for path in checkpoint.list_checkpoints(destination / rundir.CHECKPOINTS):
        if global_step is None or int(checkpoint.CHECKPOINT_NAME.match(path.name).group(1)) > global_step:
            path.unlink()
    (destination / rundir.RESULT).unlink()
    (destination / rundir.WEIGHTS).unlink()
    return destination


# Mid-epoch checkpoints, epoch ends (30), the step after one (31), and the last mid-epoch one (59).
@pytest.mark.parametrize("step", [1, 7, 29, 30, 31, 46, 59])
def test_resume_from_a_checkpoint_gives_identical_weights(all_checkpoints, kill_dataset, tmp_path, step):
    run_dir = as_if_killed_after(all_checkpoints, step, tmp_path / f"from-{step}")
    lines = []
    fit(config_for(run_dir, keep_checkpoints=1000), dataset=kill_dataset, resuming=True, log=lines.append)
    assert any(f"(global step {step})" in line for line in lines), lines
    assert_same_run(run_dir, all_checkpoints)


def test_control_resume_without_random_states_differs(all_checkpoints, kill_dataset, tmp_path, monkeypatch):
    # The control that shows the comparisons above can fail: skip restoring the random states and the
    # dropout masks after the resume differ, and so do the final weights.
    monkeypatch.setattr(checkpoint, "set_random_states", lambda *args: None)
    run_dir = as_if_killed_after(all_checkpoints, 7, tmp_path / "no-random-states")
    fit(config_for(run_dir, keep_checkpoints=1000), dataset=kill_dataset, resuming=True, log=quiet)
    assert weights_differ(run_dir, all_checkpoints)
    assert read_rows(run_dir / rundir.STEPS)[:7] == read_rows(all_checkpoints / rundir.STEPS)[:7]
    assert read_rows(run_dir / rundir.STEPS)[7:] != read_rows(all_checkpoints / rundir.STEPS)[7:]


def test_resume_before_the_first_checkpoint_starts_from_the_beginning(all_checkpoints, kill_dataset, tmp_path):
    run_dir = as_if_killed_after(all_checkpoints, None, tmp_path / "no-checkpoint")
    lines = []
    fit(config_for(run_dir, keep_checkpoints=1000), dataset=kill_dataset, resuming=True, log=lines.append)
    assert any("starting it from the beginning" in line for line in lines), lines
    assert_same_run(run_dir, all_checkpoints)


def test_resume_refuses_a_run_whose_checkpoints_are_all_unreadable(all_checkpoints, kill_dataset, tmp_path):
    run_dir = as_if_killed_after(all_checkpoints, 5, tmp_path / "all-damaged")
    for path in checkpoint.list_checkpoints(run_dir / rundir.CHECKPOINTS):
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RunError, match="none of the 5 checkpoints"):
        fit(config_for(run_dir), dataset=kill_dataset, resuming=True, log=quiet)


# --- (c) atomic writes ---------------------------------------------------------------------------


def test_damaged_newest_checkpoint_is_set_aside(all_checkpoints, kill_dataset, tmp_path):
    run_dir = as_if_killed_after(all_checkpoints, 12, tmp_path / "damaged")
    folder = run_dir / rundir.CHECKPOINTS
    newest = checkpoint.checkpoint_path(folder, 12)
    whole = newest.read_bytes()
    newest.write_bytes(whole[: len(whole) // 2])  # cut off: not loadable
    lines = []
    fit(config_for(run_dir, keep_checkpoints=1000), dataset=kill_dataset, resuming=True, log=lines.append)
    assert any("skipping unreadable checkpoint" in line and newest.name in line for line in lines), lines
    assert any("(global step 11)" in line for line in lines), lines
    assert (folder / (newest.name + ".damaged")).exists()
    assert_same_run(run_dir, all_checkpoints)


def test_leftover_temporary_file_is_never_taken_for_a_checkpoint(all_checkpoints, kill_dataset, tmp_path):
    run_dir = as_if_killed_after(all_checkpoints, 12, tmp_path / "leftover")
    folder = run_dir / rundir.CHECKPOINTS
    leftover = folder / ".step-000000013.safetensors.0badf00d.tmp"  # what a kill during a write leaves
    # Even a whole file is not taken: this one holds a later state (global step 20).
    leftover.write_bytes(checkpoint.checkpoint_path(all_checkpoints / rundir.CHECKPOINTS, 20).read_bytes())
    lines = []
    fit(config_for(run_dir, keep_checkpoints=1000), dataset=kill_dataset, resuming=True, log=lines.append)
    assert any("(global step 12)" in line for line in lines), lines
    assert not leftover.exists()
    assert_same_run(run_dir, all_checkpoints)


KILL_INSIDE_WRITE = r"""
import os, signal, sys
target, seen, real_fsync = int(sys.argv[1]), 0, os.fsync
def fsync(fd):  # SIGKILL this process as it fsyncs the temporary file of its `target`-th checkpoint
    global seen
    name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    if name.startswith(".step-") and name.endswith(".tmp"):
        seen += 1
        if seen == target:
            os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)
os.fsync = fsync
from digitlab.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_sigkill_inside_a_checkpoint_write(uninterrupted, kill_data, tmp_path, capsys):
    reference, _ = uninterrupted
    run_dir = tmp_path / "run"
    process = start(["9", *train_args(kill_data, run_dir)], program=["-c", KILL_INSIDE_WRITE])
    output = finish(process)
    assert process.returncode == -signal.SIGKILL, output
    folder = run_dir / rundir.CHECKPOINTS
    assert [p.name for p in folder.glob(".step-000000009.safetensors.*.tmp")], "no half-written checkpoint"
    assert checkpoint_steps(run_dir) == [7, 8]  # the newest whole ones (--keep-checkpoints 2)
    assert cli.main(["train", "--resume", str(run_dir), "--progress", "none"]) == 0  # in this process
    assert "(global step 8)" in capsys.readouterr().out
    assert_same_run(run_dir, reference)


# --- (e) SIGTERM ---------------------------------------------------------------------------------


def test_sigterm_checkpoints_and_says_how_to_resume(uninterrupted, kill_data, tmp_path):
    reference, _ = uninterrupted
    run_dir = tmp_path / "run"
    process = start(train_args(kill_data, run_dir))
    wait_for_training(process)
    deadline = time.monotonic() + TIMEOUT
    while not checkpoint_steps(run_dir) and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGTERM)
    output = finish(process)
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM" in output and f"digitlab train --resume {run_dir}" in output
    assert "Traceback" not in output
    steps_taken = len(read_rows(run_dir / rundir.STEPS))
    assert 0 < steps_taken < TOTAL_STEPS
    assert checkpoint_steps(run_dir)[-1] == steps_taken  # written at the step boundary where it stopped
    assert cli.main(["train", "--resume", str(run_dir), "--progress", "none"]) == 0  # in this process
    assert_same_run(run_dir, reference)


# --- (f) --deterministic -------------------------------------------------------------------------


def test_deterministic_is_recorded(data_dir, tmp_path):
    try:
        assert (
            cli.main(
                [
                    "train",
                    "--model",
                    "mlp",
                    "--hidden-size",
                    "8",
                    "--batch-size",
                    "100",
                    "--deterministic",
                    "--threads",
                    "1",
                    "--device",
                    "cpu",
                    "--progress",
                    "none",
                    "--data-dir",
                    str(data_dir),
                    "--run-dir",
                    str(tmp_path / "run"),
                ]
            )
            == 0
        )
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / rundir.CONFIG).read_text())["deterministic"] is True
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert result["deterministic"] is True and result["bit_reproducible"] is True
    env = json.loads((run_dir / rundir.ENV).read_text())
    assert env["deterministic"] is True and env["bit_identical_resume"] is True
