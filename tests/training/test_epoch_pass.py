"""training.epoch_pass, through loop.train_epoch: between steps the clock pauses for the --eval-every probe (which
may end the epoch), the --checkpoint-every checkpoint and a stop request; step rows are written in order however
the epoch is cut, and a pass resumed mid-epoch goes on where it stopped."""

from __future__ import annotations

import time

import pytest

from digitlab.errors import Interrupted
from digitlab.store import checkpoint, rundir
from digitlab.store.files import read_rows
from digitlab.training import loop
from digitlab.training.session import Position


def checkpoint_steps(session) -> list[int]:
    return [int(path.stem.split("-")[1]) for path in checkpoint.list_checkpoints(session.run_dir / rundir.CHECKPOINTS)]


def test_a_probe_that_asks_ends_the_epoch_there(tiny_session, tiny_data):
    session, seen = tiny_session(eval_every=2), []

    def probe(position: Position) -> bool:
        seen.append((position.step, position.global_step, position.epoch_seconds))
        return True

    position = Position()
    losses = loop.train_epoch(session, *tiny_data, position, None, probe)
    assert [(step, global_step) for step, global_step, _ in seen] == [(2, 2)]
    assert seen[0][2] > 0  # the training seconds so far, put in the position before the probe
    assert position.step == 2 and len(losses) == 2
    assert [row["step"] for row in read_rows(session.run_dir / rundir.STEPS)] == [1, 2]


def test_the_clock_does_not_count_what_runs_between_steps(tiny_session, tiny_data):
    session, pause = tiny_session(eval_every=1), 0.2

    def probe(position: Position) -> bool:
        time.sleep(pause)
        return False

    position = Position(epoch_seconds=100.0)  # a resumed epoch goes on counting from its checkpoint's seconds
    started = time.perf_counter()
    loop.train_epoch(session, *tiny_data, position, None, probe)
    wall = time.perf_counter() - started
    probes = 3  # after steps 1-3; the epoch's end (step 4) is fit's to evaluate
    assert 100.0 < position.epoch_seconds <= 100.0 + wall - probes * pause


def test_checkpoints_every_n_steps_inside_the_epoch(tiny_session, tiny_data):
    session = tiny_session(checkpoint_every=2, keep_checkpoints=5)
    loop.train_epoch(session, *tiny_data, Position(), None)
    assert checkpoint_steps(session) == [2]  # step 4 is the epoch's end: fit checkpoints it
    assert [row["global_step"] for row in read_rows(session.run_dir / rundir.STEPS)] == [1, 2, 3, 4]


def test_a_stop_request_checkpoints_at_the_next_step_and_raises(tiny_session, tiny_data):
    session = tiny_session()
    session.stop_signals.append("SIGTERM")  # as training.stop.stop_requests does when the signal comes
    position = Position()
    with pytest.raises(Interrupted, match=r"stopped by SIGTERM at epoch 1, step 1; a checkpoint was written") as caught:
        loop.train_epoch(session, *tiny_data, position, None)
    assert f"digitlab train --resume {session.run_dir}" in str(caught.value)
    assert position.step == 1 and checkpoint_steps(session) == [1]
    assert len(read_rows(session.run_dir / rundir.STEPS)) == 1


def test_rows_and_loss_sum_are_the_same_however_the_epoch_is_cut(tiny_session, tiny_data):
    whole, cut = tiny_session("whole"), tiny_session("cut", eval_every=1)
    whole_position, cut_position = Position(), Position()
    loop.train_epoch(whole, *tiny_data, whole_position, None)
    loop.train_epoch(cut, *tiny_data, cut_position, None, lambda position: position.step == 3)
    loop.train_epoch(cut, *tiny_data, cut_position, None)  # the same epoch, from step 3 on
    assert read_rows(whole.run_dir / rundir.STEPS) == read_rows(cut.run_dir / rundir.STEPS)
    assert cut_position.epoch_loss_sum == whole_position.epoch_loss_sum
    assert (cut_position.step, cut_position.global_step) == (4, 4)
