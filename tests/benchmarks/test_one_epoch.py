"""benchmarks/one_epoch.py: the trainer's epoch, timed, trains exactly as fit() does; the classic loop's sides."""

from __future__ import annotations

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.data.dataset import load, normalize, prepare
from digitlab.errors import ConfigError
from digitlab.models import build
from digitlab.optim import OPTIMIZERS
from digitlab.store import rundir
from digitlab.store.files import read_rows
from digitlab.training.device import CPU_MICRO_BATCH
from digitlab.training.fit import fit


@pytest.fixture
def sides(load_script):
    return load_script("one_epoch")


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_trainer_epoch_trains_as_fit_does(sides, session_data_dir, tmp_path, restore_threads):
    config = TrainConfig(model="mlp", hidden_size=16, batch_size=50, threads=1, device="cpu", progress="none")
    data = prepare(load(session_data_dir, log=lambda *a: None))
    timed = sides.trainer_epoch(config, data, normalize(data.train_images))
    assert timed["steps"] == 6 and timed["micro_batch"] == CPU_MICRO_BATCH
    assert timed["seconds"] >= timed["trainer_seconds"] > 0 and timed["cpu_seconds"] > 0

    run_dir = fit(config.replace(data_dir=str(session_data_dir), run_dir=str(tmp_path / "run")), log=lambda *a: None)
    steps = read_rows(run_dir / rundir.STEPS)
    assert timed["last_loss"] == steps[-1]["train/loss"]  # the same weights, order and steps
    assert timed["mean_loss"] == pytest.approx(read_rows(run_dir / rundir.METRICS)[0]["train/loss"])


def test_trainer_config_is_resolved_as_fit_resolves_it(sides, session_data_dir):
    data = prepare(load(session_data_dir, log=lambda *a: None), train_limit=100)
    config = sides.trainer_config(TrainConfig(model="lstm", batch_size=50, micro_batch=0, device="cpu"), data)
    assert config.micro_batch == CPU_MICRO_BATCH and config.run_dir
    with pytest.raises(ConfigError, match="larger than the training set"):
        sides.trainer_config(TrainConfig(batch_size=500, device="cpu"), data)


def test_classic_mnist_normalises_as_digitlab_does(sides, session_data_dir):
    data = prepare(load(session_data_dir, log=lambda *a: None))
    dataset = sides.ClassicMNIST(data.train_images.numpy(), data.train_labels.numpy())
    image, label = dataset[3]
    assert image.shape == (1, 28, 28) and label == int(data.train_labels[3])
    assert torch.allclose(image[0], normalize(data.train_images[3]), atol=1e-6)


def test_classic_epoch(sides, session_data_dir):
    data = prepare(load(session_data_dir, log=lambda *a: None), train_limit=120)
    torch.manual_seed(0)
    model = build("mlp", data.image_shape, data.num_classes, hidden_size=16)
    timed = sides.classic_epoch(model, OPTIMIZERS["adam"](model.parameters(), 0.001), data, 50, warmup_steps=1)
    assert timed["steps"] == 3 and timed["seconds"] > 0 and timed["last_loss"] > 0
