"""Batches as slices of a seeded permutation: the order is a pure function of (seed, epoch)."""

from __future__ import annotations

import torch


def epoch_order(num_examples: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled example order of one epoch: a pure function of (seed, epoch), so a resumed run,
    every optimizer of a study and every DDP rank agree on it without sharing random state."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_examples, generator=generator)


def num_batches(num_examples: int, batch_size: int) -> int:
    return -(-num_examples // batch_size)  # the last, partial batch is kept, as DataLoader does by default


def batch_indices(order: torch.Tensor, step: int, batch_size: int) -> torch.Tensor:
    return order[step * batch_size : (step + 1) * batch_size]
