"""A training session: the resolved config, the model and optimizer built from it, and where the run stands.

`fit` builds one per run; benchmarks build one the same way to time `loop.train_epoch` alone. A run started
with --init (fine-tuning) takes its first weights from another finished run (start_from).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from digitlab.config import TrainConfig
from digitlab.data.dataset import Dataset
from digitlab.errors import ConfigError, DigitlabError
from digitlab.models import build_from_config, uses_batch_statistics
from digitlab.optim import OPTIMIZERS
from digitlab.store import rundir
from digitlab.store.events import EventLog
from digitlab.training import distributed
from digitlab.training.device import micro_batch, resolve_precision, seed_everything
from digitlab.training.ema import WeightAverage


@dataclass
class Position:
    """Where a run stands; saved in every checkpoint (as its "progress" record)."""

    epoch: int = 0  # the epoch in progress (0-based)
    step: int = 0  # optimizer steps already taken in this epoch
    global_step: int = 0  # optimizer steps already taken in the run
    epoch_seconds: float = 0.0  # training seconds spent on this epoch so far
    epoch_loss_sum: float = 0.0  # sum of this epoch's step losses so far
    last_finite_loss: float | None = None  # the newest step loss recorded
    run_seconds: float = 0.0  # training seconds of the epochs before this one (time-to-target adds them up)

    @classmethod
    def from_dict(cls, values: dict) -> Position:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})


@dataclass
class Session:
    """Everything one fit() works with."""

    config: TrainConfig  # resolved: run_dir, micro_batch, precision, dataset and eval_every filled in
    model: torch.nn.Module  # the plain model (weights are saved from here)
    wrapped: torch.nn.Module  # the model that steps: DDP-wrapped when distributed, else `model` itself
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None  # fp16 only
    device: torch.device
    context: distributed.Context
    run_dir: Path
    loss_limit: float = math.inf  # a step whose loss is above this has diverged (config.divergence_factor)
    stop_signals: list = field(default_factory=list)  # names of signals received (training.stop.stop_requests)
    average: WeightAverage | None = None  # the weights' moving average (config.ema_decay), else None
    events: EventLog | None = None  # TensorBoard event files (store.events), rank 0 only, when written at all


def resolve_config(
    config: TrainConfig, data: Dataset, device: torch.device, context: distributed.Context, log=print
) -> TrainConfig:
    """Check the settings that depend on the data and hardware, and fill in what was left to digitlab (run
    directory, micro-batch, precision, the dataset found, eval_every under a target), so that config.json records
    what ran."""
    precision = resolve_precision(config.precision, device, log)
    examples = len(data.train_images)
    if config.batch_size > examples:
        raise ConfigError(
            f"--batch-size {config.batch_size} is larger than the training set ({examples} examples); "
            f"choose at most {examples}"
        )
    if config.batch_size < context.world_size:
        raise ConfigError(f"--batch-size {config.batch_size} is smaller than the {context.world_size} processes")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA GPU; on the CPU use bf16")
    with torch.device("meta"):  # what the model is made of, without allocating it
        shell = build_from_config(config, data.image_shape, data.num_classes)
    batch_statistics = uses_batch_statistics(shell)
    if config.init is not None:  # refused here, before the run directory is made
        init_weights(shell, Path(config.init), data.image_shape, data.num_classes)
    # The one rule for how a step's batch is cut into passes: training reads it back from the config.
    chunk = micro_batch(config, device, batch_statistics)
    if batch_statistics:
        # Batch norm normalises over what one forward pass sees, and cannot train on a pass of one example.
        # A process's share of a batch is index[rank::world]: the batch divided, rounded down or up.
        batches = {config.batch_size, examples % config.batch_size or config.batch_size}
        shares = {-(-batch // context.world_size) for batch in batches} | {b // context.world_size for b in batches}
        if any(share < 2 or share % chunk == 1 for share in shares):
            raise ConfigError(
                f"the {config.model} model uses batch norm, which cannot train on one example, and a forward pass "
                f"here would get one (batch {config.batch_size}, micro-batch {chunk}, {examples} examples, "
                f"{context.world_size} processes); choose another --batch-size or --micro-batch"
            )
    run_dir = config.run_dir or str(rundir.default_run_dir(config))
    steps = math.ceil(examples / config.batch_size)
    # Time-to-target evaluates at most every quarter epoch unless told otherwise.
    eval_every = config.eval_every or (math.ceil(steps / 4) if config.target_acc else 0)
    # The dataset found is recorded too: a resumed run must go on with the same one.
    return config.replace(
        run_dir=run_dir,
        micro_batch=chunk,
        precision=precision,
        dataset=data.name,
        eval_every=eval_every,
    )


def build_session(
    config: TrainConfig,
    image_shape: tuple[int, int],
    num_classes: int,
    device: torch.device,
    context: distributed.Context,
) -> Session:
    """Seed, then build the model, optimizer and (fp16) grad scaler: the seed alone decides the weights."""
    seed_everything(config.seed)
    model = build_from_config(config, image_shape, num_classes)
    if config.init is not None:
        start_from(model, Path(config.init), image_shape, num_classes)
    model = model.to(device)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config.lr, config.weight_decay)
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
    wrapped = distributed.wrap(model, context, device)
    # Chance level: a model that guesses uniformly has loss ln(classes); far above it, training has diverged.
    loss_limit = config.divergence_factor * math.log(max(num_classes, 2)) if config.divergence_factor else math.inf
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None  # from the --init weights too
    return Session(
        config, model, wrapped, optimizer, scaler, device, context, Path(config.run_dir), loss_limit, average=average
    )


def start_from(model: torch.nn.Module, run_dir: Path, image_shape: tuple[int, int], num_classes: int) -> None:
    """Load the finished run's weights into `model` (its weight average, where it kept one: what it answers with)."""
    model.load_state_dict(init_weights(model, run_dir, image_shape, num_classes))


def init_weights(model: torch.nn.Module, run_dir: Path, image_shape: tuple[int, int], num_classes: int) -> dict:
    """The --init run's weights, checked to fit `model` (which may be on the meta device); ConfigError in one line
    when they are missing or belong to another network."""
    name = rundir.AVERAGE_WEIGHTS if (run_dir / rundir.AVERAGE_WEIGHTS).is_file() else rundir.WEIGHTS
    try:
        tensors, info = rundir.read_weights(run_dir, name)
    except DigitlabError as error:  # a missing or damaged weights file
        raise ConfigError(f"--init {run_dir}: {error}") from None
    own = model.state_dict()
    different = sorted(set(own) ^ set(tensors)) or [k for k in own if own[k].shape != tensors[k].shape]
    shape = tuple(info.get("image_shape", ()))
    if different or shape != tuple(image_shape) or info.get("num_classes") != num_classes:
        where = f"; first difference: {different[0]}" if different else ""
        raise ConfigError(
            f"--init {run_dir} holds another network ({info.get('model')} on {shape} images, "
            f"{info.get('num_classes')} classes{where}); give the model settings it was trained with (its "
            f"config.json), or drop --init"
        )
    return tensors
