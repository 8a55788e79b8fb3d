"""training.stop: SIGINT and SIGTERM become stop requests while the block runs (the process goes on), the
previous handlers come back after it, threads other than the main one keep the usual effect, and the error a
stopped run ends with names the signal and the command that continues it, under torchrun too."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from digitlab.training.distributed import Context
from digitlab.training.stop import interrupted, stop_requests


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_a_request_not_an_end(number):
    before = {signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)}
    requests = []
    with stop_requests(requests):
        os.kill(os.getpid(), number)  # the handler runs before the next line
        assert requests == [signal.Signals(number).name]
    assert {signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)} == before


def test_off_the_main_thread_nothing_is_installed():
    seen = []

    def work():
        with stop_requests([]):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]


def session_with(signals: list, context: Context) -> SimpleNamespace:
    return SimpleNamespace(stop_signals=signals, context=context, run_dir=Path("runs/a"))


@pytest.mark.parametrize(
    "context, launcher",
    [
        (Context(), "digitlab train --resume runs/a"),
        (Context(world_size=4, local_world_size=4), "torchrun --nproc_per_node=4 -m digitlab train --resume runs/a"),
        (
            Context(world_size=8, local_world_size=4),
            "torchrun --nnodes=2 --nproc_per_node=4 (and your rendezvous flags) -m digitlab train --resume runs/a",
        ),
    ],
)
def test_the_error_says_how_to_continue(context, launcher):
    error = interrupted(session_with(["SIGTERM"], context), "after epoch 1")
    assert str(error) == f"stopped by SIGTERM after epoch 1; a checkpoint was written. Continue with: {launcher}"
    assert error.exit_code == 128 + signal.SIGTERM


def test_a_stop_another_process_received_exits_as_ctrl_c():
    error = interrupted(session_with([], Context(world_size=2, local_world_size=2)), "at epoch 1, step 3")
    assert str(error).startswith("stopped by a signal to another process at epoch 1, step 3")
    assert error.exit_code == 128 + signal.SIGINT
