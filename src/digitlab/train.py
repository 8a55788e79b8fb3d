"""fit(): one training run, from config to finished run directory. The only backward() and step().

Timing is honest: the device is synchronised before every clock read, training and evaluation are
timed apart, and checkpoint writes are excluded from (and recorded beside) the training time.
"""
from __future__ import annotations

import contextlib
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from digitlab import checkpoint, distributed, report, runs
from digitlab.config import ConfigError, TrainConfig
from digitlab.data import Dataset, batch_indices, epoch_order, load, normalize, num_batches, prepare
from digitlab.models import build_from_config
from digitlab.optim import OPTIMIZERS


# On the CPU, forward/backward passes over 100 examples at a time run about 1.6-1.8x faster than over
# 500-1000 (the recurrent and convolution workspaces then stay in cache; benchmarks/epoch_time.py
# measures it). The step's gradient is the same sum, in another rounding order.
CPU_MICRO_BATCH = 100


class TrainingError(RuntimeError):
    """Training stopped: divergence or a signal. The message says what happened and what to do."""

    exit_code = 1


class Interrupted(TrainingError):
    exit_code = 130


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint."""
    epoch: int = 0  # the epoch in progress (0-based)
    step: int = 0  # optimizer steps already taken in this epoch
    global_step: int = 0  # optimizer steps already taken in the run
    epoch_seconds: float = 0.0  # training seconds spent on this epoch so far
    epoch_loss_sum: float = 0.0  # sum of this epoch's step losses so far
    last_finite_loss: float | None = None


@dataclass
class Session:
    """Everything one fit() works with."""
    config: TrainConfig
    model: torch.nn.Module  # the plain model (weights are saved from here)
    trained: torch.nn.Module  # the model that steps: DDP-wrapped when distributed
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    device: torch.device
    context: distributed.Context
    run_dir: Path
    stop_signal: list = field(default_factory=list)  # names of signals received


def resolve_device(name: str, context: distributed.Context) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", context.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu or cuda[:N]")
    return device


def configure(config: TrainConfig) -> None:
    torch.set_num_threads(config.threads or runs.physical_cores())
    torch.use_deterministic_algorithms(config.deterministic)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
             precision: str = "fp32") -> dict:
    """Mean loss, accuracy and predictions over a normalised image tensor (already on the device)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    predictions = []
    for start in range(0, len(images), batch_size):
        with autocast(images.device, precision):
            logits = model(images[start:start + batch_size])
        loss_sum += F.cross_entropy(logits.float(), labels[start:start + batch_size], reduction="sum")
        predictions.append(logits.argmax(dim=1))
    model.train(was_training)
    predicted = torch.cat(predictions)
    return {"loss": loss_sum.item() / len(images), "accuracy": (predicted == labels).float().mean().item(),
            "predictions": predicted.cpu()}


def train_epoch(session: Session, images: torch.Tensor, labels: torch.Tensor, progress: Progress,
                bar) -> list[float]:
    """Train from progress.step to the epoch's end (or a stop); return the step losses taken."""
    config, context, device = session.config, session.context, session.device
    order = epoch_order(len(images), config.seed, progress.epoch)
    steps = num_batches(len(images), config.batch_size)
    losses = torch.zeros(steps, device=device)  # filled on the device; read once, not every step
    first_step = progress.step
    session.trained.train()
    synchronize(device)
    started = time.perf_counter()
    for step in range(first_step, steps):
        index = batch_indices(order, step, config.batch_size)  # the global batch
        count = len(index)
        index = index[context.rank::context.world_size].to(device, non_blocking=True)  # this rank's share
        session.optimizer.zero_grad(set_to_none=True)
        loss = torch.zeros((), device=device)
        chunks = index.split(config.micro_batch)  # gradients of the micro-batches add up to the whole batch's
        for number, chunk in enumerate(chunks):
            with gradient_sync(session, number == len(chunks) - 1):
                with autocast(device, config.precision):
                    logits = session.trained(images[chunk])
                # Sum over the chunk, scaled so that the chunks, and DDP's mean over ranks, give the global
                # batch's mean loss.
                chunk_loss = F.cross_entropy(logits.float(), labels[chunk], reduction="sum") * (
                    context.world_size / count)
                (session.scaler.scale(chunk_loss) if session.scaler is not None else chunk_loss).backward()
            loss += chunk_loss.detach()
        if session.scaler is not None:
            session.scaler.unscale_(session.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(session.model.parameters(), math.inf)
        if not is_finite(session, loss, grad_norm):
            raise diverged(session, progress, loss, losses, first_step)
        if session.scaler is not None:
            session.scaler.step(session.optimizer)
            session.scaler.update()
        else:
            session.optimizer.step()
        losses[step] = loss.detach()
        progress.step, progress.global_step = step + 1, progress.global_step + 1
        if bar is not None:
            bar.update(1)
        due = config.checkpoint_every and progress.global_step % config.checkpoint_every == 0
        stop = distributed.any_rank(bool(session.stop_signal), context, device)
        if (due or stop) and progress.step < steps:
            synchronize(device)
            progress.epoch_seconds += time.perf_counter() - started
            record_steps(session, progress, losses, first_step)
            first_step = progress.step
            save_checkpoint(session, progress)
            if stop:
                raise Interrupted(f"stopped by {session.stop_signal[0] if session.stop_signal else 'a signal'} "
                                  f"at epoch {progress.epoch + 1}, step {progress.step}; a checkpoint was written. "
                                  f"Continue with: digitlab train --resume {session.run_dir}")
            synchronize(device)
            started = time.perf_counter()
    synchronize(device)
    progress.epoch_seconds += time.perf_counter() - started
    return record_steps(session, progress, losses, first_step)


def gradient_sync(session: Session, last: bool):
    """Under DDP, all-reduce gradients on a step's last micro-batch only."""
    if last or not session.context.enabled:
        return contextlib.nullcontext()
    return session.trained.no_sync()


def is_finite(session: Session, loss: torch.Tensor, grad_norm: torch.Tensor) -> bool:
    """fp16's grad scaler skips steps with non-finite gradients itself; otherwise both must be finite."""
    return bool(torch.isfinite(loss)) and (session.scaler is not None or bool(torch.isfinite(grad_norm)))


def diverged(session: Session, progress: Progress, loss: torch.Tensor, losses: torch.Tensor,
             first_step: int) -> TrainingError:
    """Record the steps taken, checkpoint the state before the bad step, and build the error to raise."""
    record_steps(session, progress, losses, first_step)
    save_checkpoint(session, progress)
    what = "loss" if not torch.isfinite(loss) else "gradient norm"
    last = f"{progress.last_finite_loss:.4g}" if progress.last_finite_loss is not None else "none yet"
    return TrainingError(f"training diverged at epoch {progress.epoch + 1}, step {progress.step + 1} (global step "
                         f"{progress.global_step + 1}): the {what} is not finite (last finite loss {last}); the "
                         f"weights before this step are checkpointed in {session.run_dir}. Try a lower learning "
                         f"rate, e.g. --lr {session.config.lr / 10:g}")


def record_steps(session: Session, progress: Progress, losses: torch.Tensor, first_step: int) -> list[float]:
    """Write the step rows taken since `first_step` (rank 0 only); return their losses."""
    taken = distributed.average(losses[first_step:progress.step], session.context).tolist()
    progress.epoch_loss_sum += sum(taken)
    progress.last_finite_loss = taken[-1] if taken else progress.last_finite_loss
    if session.context.is_main:
        base = progress.global_step - len(taken)
        runs.append_rows(session.run_dir / runs.STEPS, [
            {"epoch": progress.epoch + 1, "step": first_step + i + 1, "global_step": base + i + 1, "train/loss": value}
            for i, value in enumerate(taken)])
    return taken


def save_checkpoint(session: Session, progress: Progress) -> None:
    if not session.context.is_main:
        return
    started = time.perf_counter()
    extra = {"scaler": session.scaler.state_dict() if session.scaler is not None else None}
    checkpoint.save_checkpoint(session.run_dir / runs.CHECKPOINTS, session.model, session.optimizer,
                               vars(progress).copy(), session.config.keep_checkpoints, extra)
    runs.append_rows(session.run_dir / "checkpoints.jsonl", [
        {"global_step": progress.global_step, "seconds": time.perf_counter() - started}])


def fit(config: TrainConfig, dataset: Dataset | None = None, resume: bool = False, log=print) -> Path:
    """Train per `config` (continuing its run directory when `resume`); return the finished run directory."""
    config.validate()
    context = distributed.context_from_environment()
    log = log if context.is_main else (lambda *args, **kwargs: None)
    device = resolve_device(config.device, context)
    configure(config)
    distributed.init(context, device)
    try:
        return _fit(config, dataset, resume, log, context, device)
    finally:
        distributed.shutdown(context)


def _fit(config, dataset, resume, log, context, device) -> Path:
    data = prepare(dataset if dataset is not None else load(config.data_dir, log=log), config.val_size,
                   config.train_limit, config.test_limit, config.seed)
    if config.batch_size > len(data.train_images):
        raise ConfigError(f"--batch-size {config.batch_size} is larger than the training set "
                          f"({len(data.train_images)} examples); choose at most {len(data.train_images)}")
    if config.batch_size < context.world_size:
        raise ConfigError(f"--batch-size {config.batch_size} is smaller than the {context.world_size} processes")
    if config.precision == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA GPU; on the CPU use bf16")

    run_dir = Path(config.run_dir) if config.run_dir else runs.default_run_dir(config)
    # Resolved here so config.json records what ran.
    micro_batch = config.micro_batch or (CPU_MICRO_BATCH if device.type == "cpu" else config.batch_size)
    config = config.replace(run_dir=str(run_dir), micro_batch=micro_batch)
    if context.is_main and not resume:
        runs.create(run_dir, config, runs.environment(device) | {"world_size": context.world_size,
                                                                "data_source": data.source,
                                                                "data_verified": data.verified})

    seed_everything(config.seed)
    model = build_from_config(config, data.image_shape, data.num_classes).to(device)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config.lr)
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
    initial_weights = checkpoint.state_sha256(model)  # before any restore: the seed alone decides it
    session = Session(config, model, distributed.wrap(model, context, device), optimizer, scaler, device,
                      context, run_dir)
    progress = Progress()
    if resume:
        progress = restore(session, log)

    # Data lives on the device, normalised once: batching is then index slicing, with no per-sample work.
    train_images, train_labels = normalize(data.train_images).to(device), data.train_labels.to(device)
    test_images, test_labels = normalize(data.test_images).to(device), data.test_labels.to(device)
    val = None if data.val_images is None else (normalize(data.val_images).to(device), data.val_labels.to(device))

    steps = num_batches(len(train_images), config.batch_size)
    table = report.EpochTable(has_val=val is not None, print_line=log)
    if progress.epoch == 0 and progress.step == 0:
        log(f"training {config.model} with {config.optimizer} (lr {config.lr:g}, batch {config.batch_size}, "
            f"{config.precision}) on {len(train_images)} examples, {steps} steps per epoch, device {device}, "
            f"{torch.get_num_threads()} threads, data from {data.source}")
    table.header()
    with handle_signals(session):
        while progress.epoch < config.epochs:
            with report.progress_bar(steps, progress.step, f"epoch {progress.epoch + 1}/{config.epochs}",
                                     config.progress if context.is_main else "none") as bar:
                train_epoch(session, train_images, train_labels, progress, bar)
            synchronize(device)
            eval_started = time.perf_counter()
            test = evaluate(model, test_images, test_labels, config.eval_batch_size, config.precision)
            val_result = evaluate(model, *val, config.eval_batch_size, config.precision) if val else None
            synchronize(device)
            row = {"epoch": progress.epoch + 1, "global_step": progress.global_step,
                   "train/loss": progress.epoch_loss_sum / steps, "train/seconds": progress.epoch_seconds,
                   "eval/seconds": time.perf_counter() - eval_started,
                   "cpu_pressure_avg10": runs.cpu_pressure_avg10(),  # a busy neighbour inflates the seconds
                   "test/loss": test["loss"], "test/acc": test["accuracy"],
                   "batch_order_sha256": checkpoint.tensor_sha256(
                       epoch_order(len(train_images), config.seed, progress.epoch))}
            if val_result:
                row |= {"val/loss": val_result["loss"], "val/acc": val_result["accuracy"]}
            if context.is_main:
                runs.append_rows(run_dir / runs.METRICS, [row])
            table.row(row)
            progress = Progress(epoch=progress.epoch + 1, global_step=progress.global_step,
                                last_finite_loss=progress.last_finite_loss)
            save_checkpoint(session, progress)
            if session.stop_signal:
                raise Interrupted(f"stopped by {session.stop_signal[0]} after epoch {progress.epoch}; a checkpoint "
                                  f"was written. Continue with: digitlab train --resume {run_dir}")

    if context.is_main:
        rows = runs.read_rows(run_dir / runs.METRICS)
        runs.save_weights(run_dir, model, {"model": config.model, "image_shape": list(data.image_shape),
                                           "num_classes": data.num_classes})
        runs.write_json(run_dir / runs.RESULT, {
            "final": rows[-1], "epochs": len(rows),
            "train_seconds_total": sum(r["train/seconds"] for r in rows),
            "peak_rss_mb": report.peak_rss_mb(), "deterministic": config.deterministic,
            "initial_weights_sha256": initial_weights,
            "bit_reproducible": device.type == "cpu" or config.deterministic})
    log(f"run directory: {run_dir}")
    return run_dir


def restore(session: Session, log) -> Progress:
    """Load the newest whole checkpoint and cut the metric files back to it."""
    loaded = checkpoint.load_latest(session.run_dir / runs.CHECKPOINTS, log=log)
    if loaded is None:
        raise runs.RunError(f"{session.run_dir} has no readable checkpoint to resume from; start a new run")
    tensors, metadata = loaded
    progress = Progress(**checkpoint.restore(session.model, session.optimizer, tensors, metadata))
    if session.scaler is not None and metadata["extra"].get("scaler"):
        session.scaler.load_state_dict(metadata["extra"]["scaler"])
    if session.context.is_main:
        runs.truncate_rows(session.run_dir / runs.STEPS, lambda row: row["global_step"] <= progress.global_step)
        runs.truncate_rows(session.run_dir / runs.METRICS, lambda row: row["epoch"] <= progress.epoch)
        (session.run_dir / runs.RESULT).unlink(missing_ok=True)
    log(f"resuming {session.run_dir} at epoch {progress.epoch + 1}, step {progress.step} "
        f"(global step {progress.global_step})")
    return progress


@contextlib.contextmanager
def handle_signals(session: Session):
    """Ctrl-C and SIGTERM ask for a checkpoint at the next step boundary instead of killing the run."""
    def request_stop(number, _frame):
        session.stop_signal.append(signal.Signals(number).name)

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
