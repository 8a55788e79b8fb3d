"""Batches (digitlab.data.batching): slices of a permutation that (seed, epoch) alone decides."""

from __future__ import annotations

import torch

from digitlab.data.batching import batch_indices, epoch_order, num_batches


def test_epoch_order_is_a_permutation():
    order = epoch_order(50, seed=1, epoch=0)
    assert sorted(order.tolist()) == list(range(50))


def test_epoch_order_is_the_same_for_the_same_seed_and_epoch():
    assert torch.equal(epoch_order(50, seed=1, epoch=0), epoch_order(50, seed=1, epoch=0))


def test_epoch_order_changes_with_the_epoch():
    assert not torch.equal(epoch_order(50, seed=1, epoch=0), epoch_order(50, seed=1, epoch=1))


def test_epoch_order_changes_with_the_seed():
    assert not torch.equal(epoch_order(50, seed=1, epoch=0), epoch_order(50, seed=2, epoch=0))


def test_last_partial_batch_counts():
    assert num_batches(100, 30) == 4 and num_batches(90, 30) == 3


def test_batches_cover_the_order_once():
    order = epoch_order(100, seed=3, epoch=2)
    batches = [batch_indices(order, step, 30) for step in range(num_batches(100, 30))]
    assert [len(batch) for batch in batches] == [30, 30, 30, 10]
    assert torch.equal(torch.cat(batches), order)
