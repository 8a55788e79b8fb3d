"""digitlab.data.augment: shapes, dtypes and labels kept; draws a pure function of (seed, epoch, step);
evaluation data never touched."""

from __future__ import annotations

import torch

from digitlab.data import augment
from digitlab.data.augment import Augmentation

FULL = Augmentation(rotate=10.0, scale=0.1, shift=2.0, elastic=2.0)
DEVICE = torch.device("cpu")


def images(count=8):
    return torch.randn(count, 28, 28, generator=torch.Generator().manual_seed(0))


def grids(augmentation=FULL, count=8, seed=0, epoch=0, step=0):
    return augment.draw(augmentation, count, (28, 28), seed, epoch, step, DEVICE)


def test_shape_and_dtype_are_kept():
    out = augment.apply(images(), grids(), background=-0.42)
    assert out.shape == (8, 28, 28) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_same_seed_epoch_step_gives_the_same_images():
    assert torch.equal(grids(), grids())


def test_another_seed_epoch_or_step_gives_other_images():
    reference = grids()
    for changed in (dict(seed=1), dict(epoch=1), dict(step=1)):
        assert not torch.equal(grids(**changed), reference), changed


def test_no_change_asked_is_the_identity():
    batch = images()
    out = augment.apply(batch, grids(Augmentation()), background=-0.42)
    torch.testing.assert_close(out, batch, atol=1e-4, rtol=0)


def test_a_shift_moves_the_digit_and_fills_with_background():
    batch = torch.full((1, 28, 28), -0.42)
    batch[0, 10:18, 10:18] = 2.0
    only_shift = Augmentation(shift=3.0)
    out = augment.apply(batch, grids(only_shift, count=1), background=-0.42)
    assert not torch.allclose(out, batch)
    assert out[0, 0, :].eq(-0.42).all() and out[0, :, 0].eq(-0.42).all()  # the border stays blank
    assert abs(out.sum().item() - batch.sum().item()) < 1e-3 * abs(batch.sum().item()) + 1.0


def test_elastic_changes_the_image_only_when_asked():
    batch = images(2)
    plain = augment.apply(batch, grids(Augmentation(rotate=5.0), count=2), background=-0.42)
    elastic = augment.apply(batch, grids(Augmentation(rotate=5.0, elastic=2.0), count=2), background=-0.42)
    assert not torch.allclose(plain, elastic)


def test_enabled():
    assert not Augmentation().enabled and FULL.enabled and Augmentation(shift=1).enabled
