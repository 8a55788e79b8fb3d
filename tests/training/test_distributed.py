"""DistributedDataParallel under torchrun: 2 processes with gloo on the loopback interface, against one
process at the same global batch size; and a 2-process run stopped by SIGTERM and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from digitlab.config import TrainConfig
from digitlab.store import checkpoint, rundir
from digitlab.store.files import read_json, read_rows
from digitlab.training.fit import fit
from helpers import write_dataset

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed with gloo"
)

# Seconds one torchrun job may take; a busy machine (other jobs on the cores) may need more.
TIMEOUT = float(os.environ.get("DIGITLAB_TEST_TIMEOUT", "300"))

# 300 examples in global batches of 30: 10 steps per epoch, each process taking 15 examples of every batch.
SETTINGS = dict(
    model="lstm", num_layers=1, hidden_size=16, batch_size=30, epochs=2, lr=0.01, seed=1, checkpoint_every=4,
    threads=1, device="cpu", progress="none",
)  # fmt: skip


def quiet(*args, **kwargs):
    pass


def flags(settings: dict) -> list[str]:
    return [part for name, value in settings.items() for part in (f"--{name.replace('_', '-')}", str(value))]


def start_torchrun(args: list[str], processes: int = 2, target: list[str] | None = None) -> subprocess.Popen:
    """torchrun on 127.0.0.1 running `digitlab ARGS` (or `target`, a script and its arguments)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    env["PYTHONUNBUFFERED"] = "1"
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # --standalone rendezvous on localhost; gloo on the loopback too
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               *(target or ["-m", "digitlab", *args])]  # fmt: skip
    # A session of its own: on a timeout the whole group (torchrun and its workers) is killed.
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )


def finish(process: subprocess.Popen) -> str:
    try:
        return process.communicate(timeout=TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
        raise AssertionError(f"torchrun took over {TIMEOUT} s:\n{output}") from None


def torchrun(args: list[str]) -> str:
    process = start_torchrun(args)
    output = finish(process)
    assert process.returncode == 0, output
    assert "Traceback" not in output and "Error" not in output, output
    return output


@pytest.fixture(scope="module")
def ddp_data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("ddp-data"), n_train=300, n_test=100)


@pytest.fixture(scope="module")
def two_processes(ddp_data, tmp_path_factory) -> tuple[Path, Path, str]:
    """The same run as one process and under torchrun with 2 processes; and torchrun's output."""
    folder = tmp_path_factory.mktemp("ddp")
    single = fit(TrainConfig(**SETTINGS, data_dir=str(ddp_data), run_dir=str(folder / "single")), log=quiet)
    ddp = folder / "ddp"
    output = torchrun(["train", *flags(SETTINGS), "--data-dir", str(ddp_data), "--run-dir", str(ddp)])
    return single, ddp, output


def test_rank_0_alone_logs(two_processes):
    _, _, output = two_processes
    assert output.count("training lstm") == 1 and output.count("run directory:") == 1


def test_rank_0_alone_writes_the_records(two_processes):
    # One row per step and per epoch, each checkpoint once.
    _, ddp, _ = two_processes
    steps = read_rows(ddp / rundir.STEPS)
    assert [row["global_step"] for row in steps] == list(range(1, 21))
    assert [row["epoch"] for row in read_rows(ddp / rundir.METRICS)] == [1, 2]
    assert [row["global_step"] for row in read_rows(ddp / rundir.CHECKPOINT_LOG)] == [4, 8, 10, 12, 16, 20]
    assert [p.name for p in checkpoint.list_checkpoints(ddp / rundir.CHECKPOINTS)] == [
        "step-000000016.safetensors",
        "step-000000020.safetensors",
    ]
    assert read_json(ddp / rundir.ENV)["world_size"] == 2
    assert read_json(ddp / rundir.RESULT)["world_size"] == 2


def test_two_processes_match_one_process(two_processes):
    # The same training as one process, within float tolerance (the gradient is summed in another order).
    single, ddp, _ = two_processes
    steps = read_rows(ddp / rundir.STEPS)
    one, two = read_json(single / rundir.RESULT)["final"], read_json(ddp / rundir.RESULT)["final"]
    weights_one, _ = rundir.read_weights(single)
    weights_two, _ = rundir.read_weights(ddp)
    max_difference = max((weights_one[n] - weights_two[n]).abs().max().item() for n in weights_one)
    print(
        f"\none process: test loss {one['test/loss']:.8f}, test acc {one['test/acc']:.4f}; "
        f"two processes: test loss {two['test/loss']:.8f}, test acc {two['test/acc']:.4f}; "
        f"largest weight difference {max_difference:.3g}"
    )
    assert two["test/loss"] == pytest.approx(one["test/loss"], abs=1e-4)
    assert two["test/acc"] == pytest.approx(one["test/acc"], abs=0.011)  # at most one of the 100 test digits
    assert two["train/loss"] == pytest.approx(one["train/loss"], abs=1e-4)
    assert max_difference < 1e-4
    for name in weights_one:
        torch.testing.assert_close(weights_two[name], weights_one[name], rtol=1e-4, atol=1e-5)
    losses_one = [row["train/loss"] for row in read_rows(single / rundir.STEPS)]
    assert [row["train/loss"] for row in steps] == pytest.approx(losses_one, abs=1e-4)
    assert one["test/acc"] > 0.3  # it learned something, so the comparison means something


@pytest.mark.timeout(4 * TIMEOUT)  # three torchrun jobs, each held to TIMEOUT
def test_two_processes_stopped_by_sigterm_resume_bit_identically(ddp_data, tmp_path):
    # Dropout: each process's random states must be saved and restored for the resumed run to match.
    settings = SETTINGS | dict(num_layers=2, dropout=0.3, checkpoint_every=1)
    straight = tmp_path / "straight"
    torchrun(["train", *flags(settings), "--data-dir", str(ddp_data), "--run-dir", str(straight)])

    stopped = tmp_path / "stopped"
    process = start_torchrun(["train", *flags(settings), "--data-dir", str(ddp_data), "--run-dir", str(stopped)])
    deadline = time.monotonic() + TIMEOUT
    while (
        not checkpoint.list_checkpoints(stopped / rundir.CHECKPOINTS)
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
    output = finish(process)
    assert process.returncode != 0
    assert f"--resume {stopped}" in output, output
    # Both processes exited by themselves, within torchrun's 30 s grace (none hung at exit).
    assert "forcefully exiting" not in output, output
    taken = len(read_rows(stopped / rundir.STEPS))
    assert 0 < taken < 20, output
    assert (
        int(
            checkpoint.CHECKPOINT_NAME.match(checkpoint.list_checkpoints(stopped / rundir.CHECKPOINTS)[-1].name).group(
                1
            )
        )
        == taken
    )

    output = torchrun(["train", "--resume", str(stopped), "--progress", "none"])
    assert f"(global step {taken})" in output
    got, _ = rundir.read_weights(stopped)
    want, _ = rundir.read_weights(straight)
    assert all(torch.equal(got[name], want[name]) for name in want)
    assert read_rows(stopped / rundir.STEPS) == read_rows(straight / rundir.STEPS)


def test_resume_under_torchrun_is_refused_while_another_process_holds_the_run(two_processes):
    # Rank 0 is refused the lock; every rank then stops at once (none waits for the others), touching nothing.
    from digitlab.store import lock

    _, ddp, _ = two_processes
    before = {p: p.read_bytes() for p in sorted(ddp.rglob("*")) if p.is_file() and p.name != lock.LOCK}
    with lock.holding(ddp):
        process = start_torchrun(["train", "--resume", str(ddp), "--epochs", "3", "--progress", "none"])
        output = finish(process)
    assert process.returncode != 0, output
    assert f"pid {os.getpid()} is training in it" in output, output
    assert {p: p.read_bytes() for p in sorted(ddp.rglob("*")) if p.is_file() and p.name != lock.LOCK} == before


def test_a_new_run_into_a_finished_run_is_refused_on_every_rank(two_processes, ddp_data):
    # Rank 0 alone creates the run directory; its refusal stops every rank at once, none left waiting.
    from digitlab.store import lock

    _, ddp, _ = two_processes
    before = {p: p.read_bytes() for p in sorted(ddp.rglob("*")) if p.is_file() and p.name != lock.LOCK}
    process = start_torchrun(["train", *flags(SETTINGS), "--data-dir", str(ddp_data), "--run-dir", str(ddp)])
    output = finish(process)
    assert process.returncode != 0, output
    # One line from digitlab (rank 0's); torchrun then reports the failed workers in a traceback of its own.
    assert output.count("digitlab: error:") == 1 and "already holds a finished run" in output, output
    assert {p: p.read_bytes() for p in sorted(ddp.rglob("*")) if p.is_file() and p.name != lock.LOCK} == before


MAIN_DOES = """
import torch
from digitlab.errors import DigitlabError, RunError
from digitlab.training import distributed

context = distributed.context_from_environment()
distributed.init(context, torch.device("cpu"))


def refuse():
    raise RunError("the run directory is taken")


try:
    distributed.main_does(refuse, context, torch.device("cpu"))
    print(f"rank {context.rank}: went on", flush=True)
except DigitlabError as error:
    print(f"rank {context.rank}: stopped: {error}", flush=True)
distributed.shutdown(context, together=True)
"""


def test_a_refusal_on_rank_0_stops_every_rank(tmp_path):
    # Rank 1 must not go on to a collective that rank 0, which has left, would never join.
    script = tmp_path / "main_does.py"
    script.write_text(MAIN_DOES)
    process = start_torchrun([], processes=2, target=[str(script)])
    output = finish(process)
    assert process.returncode == 0, output
    assert "rank 0: stopped: the run directory is taken" in output, output
    assert "rank 1: stopped" in output and "went on" not in output, output
