"""A tiny training session built in memory, for the unit tests of the step loop, the epoch pass and
checkpointing: an MLP on 100 random 28x28 images of 10 classes, 4 steps of 25 per epoch, on the CPU."""

from __future__ import annotations

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.training import distributed
from digitlab.training.session import Session, build_session

EXAMPLES, BATCH = 100, 25


@pytest.fixture
def tiny_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(EXAMPLES, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (EXAMPLES,), generator=generator)
    return images, labels


@pytest.fixture
def tiny_session(tmp_path):
    """A factory: tiny_session(name="run", **config changes) -> a Session whose run directory exists."""

    def build(name: str = "run", **changes) -> Session:
        run_dir = tmp_path / name
        run_dir.mkdir(exist_ok=True)
        settings = dict(
            model="mlp", hidden_size=16, num_layers=1, batch_size=BATCH, epochs=1, micro_batch=BATCH, threads=1,
            device="cpu", progress="none", run_dir=str(run_dir),
        )  # fmt: skip
        config = TrainConfig(**(settings | changes))
        return build_session(config, (28, 28), 10, torch.device("cpu"), distributed.Context())

    return build
