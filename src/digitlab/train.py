"""fit(): one training run, from config to finished run directory. The only backward() and step().

Timing is honest: the device is synchronised before every clock read, training and evaluation are
timed apart, and checkpoint writes are excluded from (and recorded beside) the training time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from digitlab import checkpoint, distributed, report, resume, runs
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
    """Stopped by Ctrl-C or SIGTERM after writing a checkpoint; exits 128 + the signal's number."""

    def __init__(self, message: str, signal_name: str | None):
        super().__init__(message)
        self.exit_code = 128 + (signal.Signals[signal_name].value if signal_name else signal.SIGINT.value)


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
    stop_signal: list = field(default_factory=list)  # names of signals received (resume.stop_requests)


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


def configure(config: TrainConfig, context: distributed.Context) -> None:
    # Processes on one machine share its cores.
    torch.set_num_threads(config.threads or max(1, runs.physical_cores() // context.local_world_size))
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS is deterministic only with it
    torch.use_deterministic_algorithms(config.deterministic)
    torch.backends.cudnn.deterministic = config.deterministic
    torch.backends.cudnn.benchmark = False


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
        # The micro-batches' gradients add up to the whole batch's.
        chunks = index.split(config.micro_batch or len(index))
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
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in session.model.parameters()
                                                   if p.grad is not None])
        # One all-reduce: every rank diverges, and stops, at the same step.
        bad, stop = distributed.any_rank([not is_finite(session, loss, grad_norm), bool(session.stop_signal)],
                                         context, device)
        if bad:
            raise diverged(session, progress, loss, grad_norm, losses, first_step)
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
        if (due or stop) and progress.step < steps:  # at the epoch's end, the epoch-end checkpoint serves
            synchronize(device)
            progress.epoch_seconds += time.perf_counter() - started
            record_steps(session, progress, losses, first_step)
            first_step = progress.step
            save_checkpoint(session, progress)
            if stop:
                raise interrupted(session, f"at epoch {progress.epoch + 1}, step {progress.step}")
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


def interrupted(session: Session, where: str) -> Interrupted:
    name, context = (session.stop_signal[0] if session.stop_signal else None), session.context
    launcher = "" if not context.enabled else (
        f"torchrun --nproc_per_node={context.local_world_size} -m " if context.world_size == context.local_world_size
        else f"torchrun --nnodes={context.world_size // context.local_world_size} --nproc_per_node="
             f"{context.local_world_size} (and your rendezvous flags) -m ")
    return Interrupted(f"stopped by {name or 'a signal to another process'} {where}; a checkpoint was written. "
                       f"Continue with: {launcher}digitlab train --resume {session.run_dir}", name)


def is_finite(session: Session, loss: torch.Tensor, grad_norm: torch.Tensor) -> bool:
    """fp16's grad scaler skips steps with non-finite gradients itself; otherwise both must be finite."""
    return bool(torch.isfinite(loss)) and (session.scaler is not None or bool(torch.isfinite(grad_norm)))


def diverged(session: Session, progress: Progress, loss: torch.Tensor, grad_norm: torch.Tensor,
             losses: torch.Tensor, first_step: int) -> TrainingError:
    """Record the steps taken, checkpoint the weights this step started from (if finite, and unless a
    checkpoint of that step exists: it is kept as it is), and build the error to raise."""
    record_steps(session, progress, losses, first_step)
    finite = all(bool(torch.isfinite(p).all()) for p in session.model.parameters())  # the same on every rank
    if finite:
        save_checkpoint(session, progress, overwrite=False)
    what = ("loss" if not torch.isfinite(loss) else "gradient norm" if not torch.isfinite(grad_norm)
            else "loss of another process")
    last = f"{progress.last_finite_loss:.4g}" if progress.last_finite_loss is not None else "none yet"
    kept = (f"The weights before this step are checkpointed in {session.run_dir}." if finite else
            f"The weights before this step are not finite (the previous update overflowed) and were not "
            f"checkpointed; the newest checkpoint in {session.run_dir}, if any, is the last good state.")
    return TrainingError(f"training diverged at epoch {progress.epoch + 1}, step {progress.step + 1} (global step "
                         f"{progress.global_step + 1}): the {what} is not finite (last finite loss {last}). {kept} "
                         f"Try a lower learning rate in a new run, e.g. --lr {session.config.lr / 10:g}")


def record_steps(session: Session, progress: Progress, losses: torch.Tensor, first_step: int) -> list[float]:
    """Write the step rows taken since `first_step` (rank 0 only); return their losses."""
    taken = distributed.average(losses[first_step:progress.step], session.context).tolist()
    for value in taken:  # one running sum, in step order: the same however checkpoints cut the epoch
        progress.epoch_loss_sum += value
    progress.last_finite_loss = taken[-1] if taken else progress.last_finite_loss
    if session.context.is_main:
        base = progress.global_step - len(taken)
        runs.append_rows(session.run_dir / runs.STEPS, [
            {"epoch": progress.epoch + 1, "step": first_step + i + 1, "global_step": base + i + 1, "train/loss": value}
            for i, value in enumerate(taken)])
    return taken


def save_checkpoint(session: Session, progress: Progress, overwrite: bool = True) -> None:
    """Every rank calls this; rank 0 writes (see resume.save)."""
    resume.save(session, dataclasses.asdict(progress), overwrite)


def fit(config: TrainConfig, dataset: Dataset | None = None, resume: bool = False, log=print) -> Path:
    """Train per `config` (continuing its run directory when `resume`); return the finished run directory.
    Under torchrun, every process calls this; rank 0 alone logs and writes the run directory."""
    config.validate()
    context = distributed.context_from_environment()
    log = log if context.is_main else (lambda *args, **kwargs: None)
    device = resolve_device(config.device, context)
    configure(config, context)
    distributed.init(context, device)
    try:
        run_dir = _fit(config, dataset, resume, log, context, device)
    except TrainingError:  # a divergence or a stop: every rank raises it at the same step
        distributed.shutdown(context, together=True)
        raise
    except BaseException:
        distributed.shutdown(context, together=False)
        raise
    distributed.shutdown(context, together=True)
    return run_dir


def _fit(config, dataset, is_resumed, log, context, device) -> Path:
    if dataset is None:
        with distributed.main_first(context):  # rank 0 fetches into the cache; the others then read it
            dataset = load(config.data_dir, log=log)
    data = prepare(dataset, config.val_size, config.train_limit, config.test_limit, config.seed)
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
    # On the CPU, and on a GPU with --deterministic, a resumed run's weights equal an uninterrupted run's.
    bit_identical = device.type == "cpu" or config.deterministic
    if not bit_identical:
        log("note: without --deterministic, GPU kernels may differ run to run: a resumed run will not be "
            "bit-identical to an uninterrupted one (recorded in env.json)")
    if context.is_main and not is_resumed:
        runs.create(run_dir, config, runs.environment(device) | {
            "world_size": context.world_size, "data_source": data.source, "data_verified": data.verified,
            "deterministic": config.deterministic, "bit_identical_resume": bit_identical})

    seed_everything(config.seed)
    model = build_from_config(config, data.image_shape, data.num_classes).to(device)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config.lr)
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
    initial_weights = checkpoint.state_sha256(model)  # before any restore: the seed alone decides it
    session = Session(config, model, distributed.wrap(model, context, device), optimizer, scaler, device,
                      context, run_dir)
    progress = Progress()
    saved = resume.restore(session, log) if is_resumed else None
    if saved is not None:
        known = {f.name for f in dataclasses.fields(Progress)}
        progress = Progress(**{name: value for name, value in saved.items() if name in known})

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
    with resume.stop_requests(session.stop_signal):
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
            stop, = distributed.any_rank([bool(session.stop_signal)], context, device)
            if stop and progress.epoch < config.epochs:  # after the last epoch, finishing is quicker
                raise interrupted(session, f"after epoch {progress.epoch}")

    if context.is_main:
        rows = runs.read_rows(run_dir / runs.METRICS)
        runs.save_weights(run_dir, model, {"model": config.model, "image_shape": list(data.image_shape),
                                           "num_classes": data.num_classes})
        runs.write_json(run_dir / runs.RESULT, {
            "final": rows[-1], "epochs": len(rows),
            "train_seconds_total": sum(r["train/seconds"] for r in rows),
            "peak_rss_mb": report.peak_rss_mb(), "deterministic": config.deterministic,
            "initial_weights_sha256": initial_weights, "world_size": context.world_size,
            "bit_reproducible": bit_identical})
    log(f"run directory: {run_dir}")
    return run_dir

