"""training.loop: train_epoch computes what the classic PyTorch loop computes, micro-batches add up to the
whole batch, a divergent step never reaches the weights (read at once or found late and undone), and the
warm-up pass leaves no trace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from digitlab.data.batching import batch_indices, epoch_order, num_batches
from digitlab.errors import TrainingError
from digitlab.store import rundir
from digitlab.store.checkpoint import random_states
from digitlab.store.files import read_rows
from digitlab.training import loop
from digitlab.training.session import Position

BATCH = 25  # tiny_session's (tests/training/conftest.py)


def same_state(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def test_an_epoch_is_the_classic_loop(tiny_session, tiny_data):
    # For each batch: forward, loss, backward, step; the loss summed and scaled by the batch, as train_epoch does.
    images, labels = tiny_data
    trained, classic = tiny_session("trained"), tiny_session("classic")
    assert same_state(trained.model.state_dict(), classic.model.state_dict())  # the seed alone decides them
    losses = loop.train_epoch(trained, images, labels, Position(), None)

    order = epoch_order(len(images), classic.config.seed, 0)
    classic.model.train()
    expected = []
    for step in range(num_batches(len(images), BATCH)):
        index = batch_indices(order, step, BATCH)
        classic.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(classic.model(images[index]), labels[index], reduction="sum") * (1 / len(index))
        loss.backward()
        classic.optimizer.step()
        expected.append(loss.item())
    assert losses == expected
    assert same_state(trained.model.state_dict(), classic.model.state_dict())
    assert [row["train/loss"] for row in read_rows(trained.run_dir / rundir.STEPS)] == expected


def test_micro_batches_add_up_to_the_whole_batch(tiny_session, tiny_data):
    images, labels = tiny_data
    index = torch.arange(BATCH)
    gradients, losses = [], []
    for micro_batch in (BATCH, 5):
        session = tiny_session(f"micro-{micro_batch}", micro_batch=micro_batch)
        losses.append(loop.forward_backward(session, images, labels, index, None, BATCH))
        gradients.append([p.grad.clone() for p in session.model.parameters()])
    torch.testing.assert_close(losses[0], losses[1])
    for whole, parts in zip(*gradients):
        torch.testing.assert_close(whole, parts)


@pytest.mark.parametrize("check_every", [1, 3])
def test_a_divergent_step_never_reaches_the_weights(tiny_session, tiny_data, check_every, monkeypatch):
    # lr 1e30 on SGD: step 1's update makes step 2's loss non-finite. Read at once, step 2 raises before its
    # update; read every 3 steps, steps 2 and 3 ran and are undone. Either way the weights are step 2's start.
    images, labels = tiny_data
    session = tiny_session(optimizer="sgd", lr=1e30, divergence_factor=0, check_every=check_every)
    position = Position()
    before_step_2 = {}
    original = loop.set_learning_rate

    def keeping(session_, global_step, total_steps):
        if global_step == 1:
            before_step_2.update({k: v.clone() for k, v in session_.model.state_dict().items()})
        original(session_, global_step, total_steps)

    monkeypatch.setattr(loop, "set_learning_rate", keeping)
    with pytest.raises(TrainingError, match=r"epoch 1, step 2 \(global step 2\): the loss is not finite"):
        loop.train_epoch(session, images, labels, position, None)
    assert (position.step, position.global_step) == (1, 1)
    assert same_state(session.model.state_dict(), before_step_2)
    assert len(read_rows(session.run_dir / rundir.STEPS)) == 1


def test_warm_up_leaves_no_trace(tiny_session, tiny_data):
    images, labels = tiny_data
    session = tiny_session()
    weights = {k: v.clone() for k, v in session.model.state_dict().items()}
    tensors, info = random_states()
    seconds = loop.warm_up(session, images, labels)
    assert seconds > 0
    assert same_state(session.model.state_dict(), weights)
    assert all(p.grad is None for p in session.model.parameters())
    after_tensors, after_info = random_states()
    assert same_state(tensors, after_tensors) and info == after_info


def test_augmentation_follows_the_config(tiny_session):
    assert not loop.augmentation_of(tiny_session().config).enabled
    assert loop.augmentation_of(tiny_session("rotated", rotate=10.0).config).enabled
