"""The real MNIST, from the read-only copy beside the repository (shared/data/mnist); skipped without it."""

from __future__ import annotations

import gzip

import pytest
import torch

from digitlab.data import dataset, idx
from digitlab.errors import DataError
from helpers import NAMES, REAL_MNIST

pytestmark = pytest.mark.skipif(
    not all((REAL_MNIST / f"{name}.gz").is_file() for name in NAMES.values()), reason=f"no MNIST copy at {REAL_MNIST}"
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return dataset.load(REAL_MNIST, log=pytest.fail)  # verified MNIST: nothing to note


def test_real_mnist_is_verified(mnist):
    assert mnist.verified is True
    assert mnist.checksums == idx.MNIST_SHA256


def test_real_mnist_has_its_known_shape_and_class_counts(mnist):
    assert mnist.image_shape == (28, 28) and mnist.num_classes == 10
    assert torch.bincount(mnist.train_labels).tolist() == TRAIN_COUNTS
    assert torch.bincount(mnist.test_labels).tolist() == TEST_COUNTS


def test_normalisation_constants_are_mnists_pixel_statistics(mnist):
    pixels = mnist.train_images.double() / 255
    assert pixels.mean().item() == pytest.approx(dataset.MNIST_MEAN, abs=1e-4)
    assert pixels.std().item() == pytest.approx(dataset.MNIST_STD, abs=1e-4)


def test_one_changed_pixel_makes_mnist_corrupt(tmp_path):
    for name in NAMES.values():
        (tmp_path / name).write_bytes(gzip.decompress((REAL_MNIST / f"{name}.gz").read_bytes()))
    path = tmp_path / NAMES["train_images"]
    raw = bytearray(path.read_bytes())
    raw[16 + 12345] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as caught:
        dataset.load(tmp_path, log=lambda *a: None)
    message = str(caught.value)
    assert "corrupt" in message and NAMES["train_images"] in message
    assert NAMES["test_images"] not in message and NAMES["train_labels"] not in message
