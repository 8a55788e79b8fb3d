"""training.checkpointing: a session saved and restored into a fresh one goes on as it was (weights, optimizer
state, weight average, position, random states); overwrite=False keeps a checkpoint that exists; every write
is logged with its seconds; a run without checkpoints starts over and one with none readable is refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from digitlab.errors import RunError
from digitlab.store import checkpoint, rundir
from digitlab.store.files import append_rows, read_rows
from digitlab.training import checkpointing, loop
from digitlab.training.session import Position


def quiet(*args, **kwargs):
    pass


def same_state(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def test_a_restored_session_goes_on_as_it_was(tiny_session, tiny_data):
    images, labels = tiny_data
    saved = tiny_session(ema_decay=0.9, eval_every=1)
    position = Position()
    loop.train_epoch(saved, images, labels, position, None, lambda where: where.step == 2)  # stop mid-epoch
    checkpointing.save(saved, position)
    expected_draw = torch.rand(3)  # what the random state at the checkpoint draws next

    restored = tiny_session(ema_decay=0.9, eval_every=1)  # the same run directory, a fresh session
    restored_position = checkpointing.restore(restored, quiet)
    assert restored_position == position and position.step == 2
    assert same_state(restored.model.state_dict(), saved.model.state_dict())
    assert same_state(restored.average.state(), saved.average.state())
    assert restored.average.updates == saved.average.updates
    first, second = restored.optimizer.state_dict(), saved.optimizer.state_dict()
    assert first["param_groups"] == second["param_groups"] and first["state"].keys() == second["state"].keys()
    assert all(same_state(first["state"][key], second["state"][key]) for key in first["state"])
    assert torch.equal(torch.rand(3), expected_draw)

    # Both finish the epoch to the same weights.
    loop.train_epoch(saved, images, labels, position, None)
    loop.train_epoch(restored, images, labels, restored_position, None)
    assert same_state(restored.model.state_dict(), saved.model.state_dict())


def test_every_write_is_logged_and_overwrite_false_keeps_the_existing_one(tiny_session):
    session = tiny_session()
    position = Position(global_step=3, step=3)
    checkpointing.save(session, position)
    path = checkpoint.checkpoint_path(session.run_dir / rundir.CHECKPOINTS, 3)
    before = path.read_bytes()
    changed = dataclasses.replace(position, epoch_loss_sum=123.0)
    checkpointing.save(session, changed, overwrite=False)
    assert path.read_bytes() == before
    rows = read_rows(session.run_dir / rundir.CHECKPOINT_LOG)
    assert [row["global_step"] for row in rows] == [3] and rows[0]["seconds"] >= 0
    checkpointing.save(session, changed)
    assert path.read_bytes() != before


def test_restore_cuts_the_records_back_to_the_checkpoint(tiny_session):
    session = tiny_session()
    checkpointing.save(session, Position(step=2, global_step=2))
    append_rows(session.run_dir / rundir.STEPS, [{"global_step": step, "train/loss": 1.0} for step in (1, 2, 3)])
    checkpointing.restore(tiny_session(), quiet)
    assert [row["global_step"] for row in read_rows(session.run_dir / rundir.STEPS)] == [1, 2]


def test_a_run_without_checkpoints_starts_over(tiny_session):
    lines = []
    assert checkpointing.restore(tiny_session(), lines.append) is None
    assert "has no checkpoint yet" in lines[-1]


def test_a_run_whose_checkpoints_are_all_unreadable_is_refused(tiny_session):
    session = tiny_session()
    checkpointing.save(session, Position(step=1, global_step=1))
    checkpoint.checkpoint_path(session.run_dir / rundir.CHECKPOINTS, 1).write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="none of the 1 checkpoints .* can be read"):
        checkpointing.restore(tiny_session(), quiet)
