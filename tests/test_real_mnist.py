"""The real MNIST, from the read-only copy beside the repository (shared/data/mnist); skipped without it."""
from __future__ import annotations

import gzip
import json

import pytest
import torch

from digitlab import data, idx, runs
from digitlab.config import TrainConfig
from digitlab.train import fit

from conftest import NAMES, REAL_MNIST

pytestmark = pytest.mark.skipif(not all((REAL_MNIST / f"{name}.gz").is_file() for name in NAMES.values()),
                                reason=f"no MNIST copy at {REAL_MNIST}")

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return data.load(REAL_MNIST, log=pytest.fail)  # verified MNIST: nothing to note


def test_real_mnist_is_verified_and_matches_known_facts(mnist):
    assert mnist.verified is True
    assert mnist.checksums == idx.MNIST_SHA256
    assert mnist.image_shape == (28, 28) and mnist.num_classes == 10
    assert torch.bincount(mnist.train_labels).tolist() == TRAIN_COUNTS
    assert torch.bincount(mnist.test_labels).tolist() == TEST_COUNTS
    pixels = mnist.train_images.double() / 255
    assert pixels.mean().item() == pytest.approx(data.MNIST_MEAN, abs=1e-4)
    assert pixels.std().item() == pytest.approx(data.MNIST_STD, abs=1e-4)


def test_one_changed_pixel_makes_mnist_corrupt(tmp_path):
    for name in NAMES.values():
        (tmp_path / name).write_bytes(gzip.decompress((REAL_MNIST / f"{name}.gz").read_bytes()))
    path = tmp_path / NAMES["train_images"]
    raw = bytearray(path.read_bytes())
    raw[16 + 12345] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(idx.DataError) as caught:
        data.load(tmp_path, log=lambda *a: None)
    message = str(caught.value)
    assert "corrupt" in message and NAMES["train_images"] in message
    assert NAMES["test_images"] not in message and NAMES["train_labels"] not in message


def test_paper_lstm_one_epoch_beats_90_percent(tmp_path):
    # The default config is the paper's: LSTM 2x128, Adam, lr 0.001, batch 100, one epoch of 60000 images.
    config = TrainConfig(data_dir=str(REAL_MNIST), run_dir=str(tmp_path / "run"), progress="none")
    assert (config.model, config.optimizer, config.lr, config.batch_size, config.epochs) == ("lstm", "adam", 0.001,
                                                                                            100, 1)
    run_dir = fit(config, log=lambda *a: None)
    result = json.loads((run_dir / runs.RESULT).read_text())
    assert result["epochs"] == 1
    assert result["final"]["global_step"] == 600
    assert result["final"]["test/acc"] > 0.90
    env = json.loads((run_dir / runs.ENV).read_text())
    assert env["data_verified"] is True
