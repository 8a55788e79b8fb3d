"""One training epoch, timed: digitlab's own trainer, and the classic DataLoader loop as its yardstick.

trainer_epoch runs training.loop.train_epoch, the code `digitlab train` runs, on a Session built as fit()
builds it (training.session.resolve_config, then build_session); classic_epoch runs the loop the usual
tutorials teach, which a reader of the paper would write. Both are timed with perf.timer.Timer after
`warmup_steps` un-timed steps on the same model, so one-time kernel set-up stays out of the time.
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch

from digitlab.config import TrainConfig
from digitlab.data.batching import num_batches
from digitlab.data.dataset import MNIST_MEAN, MNIST_STD, Dataset
from digitlab.perf.timer import Timer
from digitlab.training.device import configure
from digitlab.training.distributed import Context
from digitlab.training.loop import train_epoch
from digitlab.training.session import Position, build_session, resolve_config

CPU = torch.device("cpu")


def trainer_config(config: TrainConfig, data: Dataset, device: torch.device = CPU) -> TrainConfig:
    """`config` validated and resolved as fit() resolves it for `data` on `device` in one process (micro_batch
    filled in; ConfigError for, e.g., a batch larger than the training set)."""
    return resolve_config(config.validate(), data, device, Context())


def trainer_epoch(
    config: TrainConfig,
    data: Dataset,
    images: torch.Tensor,
    warmup_steps: int = 0,
    device: torch.device = CPU,
) -> dict:
    """Time one epoch of train_epoch over `images` (data's training images, normalised once on `device`, as
    fit() holds them) on a Session built as fit() builds it, in one process, whatever the environment says.

    As fit() does, this sets torch's threads and determinism from `config` (training.device.configure).
    The run's steps.jsonl goes to a temporary folder. "seconds" is the whole call (the shuffle order and the
    steps.jsonl write included, like the baseline's clock); "trainer_seconds" is what the trainer itself
    records as the epoch's training time."""
    context = Context()
    with tempfile.TemporaryDirectory(prefix="digitlab-epoch-") as run_dir:
        config = trainer_config(config.replace(run_dir=run_dir), data, device)
        configure(config, context)
        session = build_session(config, data.image_shape, data.num_classes, device, context)
        labels = data.train_labels.to(device)
        if warmup_steps:
            warm = warmup_steps * config.batch_size
            train_epoch(session, images[:warm], labels[:warm], Position(), None)
        position = Position()
        with Timer(device) as timer:
            losses = train_epoch(session, images, labels, position, None)
    return timer.result() | {
        "trainer_seconds": position.epoch_seconds,
        "last_loss": losses[-1],
        "mean_loss": sum(losses) / len(losses),
        "steps": len(losses),
        "micro_batch": config.micro_batch,
    }


class ClassicMNIST(torch.utils.data.Dataset):
    """The per-sample Dataset of the usual tutorials: ToTensor + Normalize on one image per __getitem__.
    (torchvision's own MNIST also makes a PIL image per sample first, which this leaves out: this
    baseline is, if anything, faster than the code it stands for.)"""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = torch.from_numpy(self.images[index][None]).contiguous().float().div(255)  # ToTensor: (1, H, W)
        image = image.sub_(MNIST_MEAN).div_(MNIST_STD)  # Normalize((0.1307,), (0.3081,))
        return image, int(self.labels[index])


def classic_loop(model, optimizer, criterion, loader, image_shape, max_steps: int | None = None):
    """The classic training loop, verbatim; stops after max_steps batches when given (warm-up)."""
    loss = None
    for step, (images, labels) in enumerate(loader):
        images = images.reshape(-1, *image_shape)
        out = model(images)
        loss = criterion(out, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if max_steps is not None and step + 1 >= max_steps:
            break
    return loss


def classic_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    batch_size: int,
    warmup_steps: int = 0,
    seed: int = 0,
) -> dict:
    """Time one epoch of the classic loop (CPU, fp32) over data's training set: ClassicMNIST in a
    DataLoader(batch_size, shuffle=True, num_workers=0), cross-entropy, zero_grad / backward / step.
    The shuffle order of the timed epoch is seeded with `seed`."""
    criterion = torch.nn.CrossEntropyLoss()
    dataset = ClassicMNIST(data.train_images.numpy(), data.train_labels.numpy())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    model.train()
    if warmup_steps:
        classic_loop(model, optimizer, criterion, loader, data.image_shape, warmup_steps)
    torch.manual_seed(seed)
    with Timer() as timer:
        loss = classic_loop(model, optimizer, criterion, loader, data.image_shape)
    return timer.result() | {"last_loss": float(loss.item()), "steps": num_batches(len(dataset), batch_size)}
