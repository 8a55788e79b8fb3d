"""fit(): one training run, from config to finished run directory.

Timing is honest: the device is synchronised before every clock read, training and evaluation are
timed apart, and checkpoint writes are excluded from (and recorded beside) the training time.
One process or many (torchrun): every process calls fit(); rank 0 alone logs and writes the run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from digitlab.config import TrainConfig
from digitlab.console import EpochTable, progress_bar
from digitlab.data.batching import epoch_order, num_batches
from digitlab.data.dataset import Dataset, load, normalize, prepare
from digitlab.errors import TrainingError
from digitlab.perf.machine import cpu_pressure_avg10, environment, peak_rss_mb
from digitlab.perf.timer import synchronize
from digitlab.store import lock, rundir
from digitlab.store.checkpoint import state_sha256, tensor_sha256
from digitlab.store.files import append_rows, read_rows, write_json
from digitlab.store.resume import stop_requests
from digitlab.training import checkpointing, distributed
from digitlab.training.device import configure, resolve_device
from digitlab.training.evaluate import evaluate
from digitlab.training.loop import interrupted, train_epoch, warm_up
from digitlab.training.session import Position, Session, build_session, resolve_config

# Called on every process after each epoch with that epoch's metrics row; returning True asks the run
# to stop there and finish (time-to-target, search pruning). Under torchrun, one process asking is enough.
EpochHook = Callable[[dict], bool]


@dataclass
class Splits:
    """The data on the training device, normalised once: batching is then index slicing."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    val_images: torch.Tensor | None
    val_labels: torch.Tensor | None

    @classmethod
    def on_device(cls, data: Dataset, device: torch.device) -> Splits:
        has_val = data.val_images is not None
        return cls(
            normalize(data.train_images).to(device), data.train_labels.to(device),
            normalize(data.test_images).to(device), data.test_labels.to(device),
            normalize(data.val_images).to(device) if has_val else None,
            data.val_labels.to(device) if has_val else None,
        )  # fmt: skip


def fit(
    config: TrainConfig,
    dataset: Dataset | None = None,
    resuming: bool = False,
    log=print,
    on_epoch: EpochHook | None = None,
) -> Path:
    """Train per `config` (continuing its run directory when `resuming`); return the finished run directory."""
    config.validate()
    context = distributed.context_from_environment()
    log = log if context.is_main else (lambda *args, **kwargs: None)
    device = resolve_device(config.device, context)
    configure(config, context)
    distributed.init(context, device)
    try:
        with contextlib.ExitStack() as hold:  # the run directory's lock, taken by _run once the folder is known
            run_dir = _run(config, dataset, resuming, log, on_epoch, context, device, hold)
    except TrainingError:  # a divergence or a stop: every rank raises it at the same step
        distributed.shutdown(context, together=True)
        raise
    except BaseException:
        distributed.shutdown(context, together=False)
        raise
    distributed.shutdown(context, together=True)
    return run_dir


def _run(config, dataset, resuming, log, on_epoch, context, device, hold: contextlib.ExitStack) -> Path:
    if dataset is None:
        with distributed.main_first(context):  # rank 0 fetches into the cache; the others then read it
            dataset = load(config.data_dir, log=log, expect=config.dataset)
    data = prepare(dataset, config.val_size, config.train_limit, config.test_limit, config.seed)
    requested_precision = config.precision
    config = resolve_config(config, data, device, context, log)
    # One process trains in a run directory at a time: refused here, before anything of the run is touched.
    hold.enter_context(distributed.main_holds(lock.holding(Path(config.run_dir)), context, device))
    # On the CPU, and on a GPU with --deterministic, a resumed run's weights equal an uninterrupted run's.
    bit_identical = device.type == "cpu" or config.deterministic
    if not bit_identical:
        log(
            "note: without --deterministic, GPU kernels may differ run to run: a resumed run will not be "
            "bit-identical to an uninterrupted one (recorded in env.json)"
        )
    if not resuming:
        run_info = {
            "world_size": context.world_size, "data_source": data.source, "data_verified": data.verified,
            "dataset": data.name,
            "deterministic": config.deterministic, "bit_identical_resume": bit_identical,
            "precision_requested": requested_precision,
        }  # fmt: skip
        distributed.main_does(
            lambda: rundir.create(Path(config.run_dir), config, environment(device) | run_info), context, device
        )

    session = build_session(config, data.image_shape, data.num_classes, device, context)
    initial_weights = state_sha256(session.model)  # before any restore: the seed alone decides it
    position = (checkpointing.restore(session, log) if resuming else None) or Position()
    splits = Splits.on_device(data, device)
    if position.epoch == 0 and position.step == 0:
        log(
            f"training {config.model} with {config.optimizer} (lr {config.lr:g}, batch {config.batch_size}, "
            f"{config.precision}) on {len(splits.train_images)} examples, "
            f"{num_batches(len(splits.train_images), config.batch_size)} steps per epoch, device {device}, "
            f"{torch.get_num_threads()} threads, data from {data.source} ({data.title})"
        )
    stopped_early = _epochs(session, splits, position, log, on_epoch)

    if context.is_main:
        rows = read_rows(session.run_dir / rundir.METRICS)
        info = {
            "model": config.model, "image_shape": list(data.image_shape), "num_classes": data.num_classes,
            "dataset": data.name, "class_names": list(data.class_names) if data.class_names else None,
        }  # fmt: skip
        rundir.save_weights(session.run_dir, session.model, info)
        write_json(session.run_dir / rundir.RESULT, {
            "final": rows[-1], "epochs": len(rows), "train_seconds_total": sum(r["train/seconds"] for r in rows),
            "peak_rss_mb": peak_rss_mb(), "deterministic": config.deterministic,
            "initial_weights_sha256": initial_weights, "world_size": context.world_size,
            "bit_reproducible": bit_identical, "stopped_early": stopped_early,
        })  # fmt: skip
    log(f"run directory: {session.run_dir}")
    return session.run_dir


def _epochs(session: Session, splits: Splits, position: Position, log, on_epoch: EpochHook | None) -> bool:
    """Train epoch after epoch to config.epochs; return True when the epoch hook stopped the run sooner."""
    config, context, device = session.config, session.context, session.device
    steps = num_batches(len(splits.train_images), config.batch_size)
    # Timed apart, so that the first epoch of this process is as comparable as the others.
    setup_seconds = None
    if position.epoch < config.epochs:
        setup_seconds = warm_up(session, splits.train_images, splits.train_labels)
        log(f"set-up (one forward/backward pass, timed apart from epoch {position.epoch + 1}): {setup_seconds:.2f} s")
    table = EpochTable(has_val=splits.val_images is not None, print_line=log)
    table.header()
    with stop_requests(session.stop_signals):
        while position.epoch < config.epochs:
            mode = config.progress if context.is_main else "none"
            with progress_bar(steps, position.step, f"epoch {position.epoch + 1}/{config.epochs}", mode) as bar:
                train_epoch(session, splits.train_images, splits.train_labels, position, bar)
            row = _epoch_row(session, splits, position, steps)
            if setup_seconds is not None:  # in the row of this process's first epoch
                row["setup/seconds"], setup_seconds = setup_seconds, None
            if context.is_main:
                append_rows(session.run_dir / rundir.METRICS, [row])
            table.row(row)
            position = Position(
                epoch=position.epoch + 1, global_step=position.global_step, last_finite_loss=position.last_finite_loss
            )
            checkpointing.save(session, position)
            asked = bool(on_epoch(row)) if on_epoch is not None else False
            stop, hook_stop = distributed.any_rank([bool(session.stop_signals), asked], context, device)
            if hook_stop and position.epoch < config.epochs:
                log(f"stopping after epoch {position.epoch}: the epoch hook asked to")
                return True
            if stop and position.epoch < config.epochs:  # after the last epoch, finishing is quicker
                raise interrupted(session, f"after epoch {position.epoch}")
    return False


def _epoch_row(session: Session, splits: Splits, position: Position, steps: int) -> dict:
    """The epoch's metrics: training loss and seconds, then the evaluation, timed apart."""
    config, device = session.config, session.device
    synchronize(device)
    eval_started = time.perf_counter()
    test = evaluate(session.model, splits.test_images, splits.test_labels, config.eval_batch_size, config.precision)
    val = None
    if splits.val_images is not None:
        val = evaluate(session.model, splits.val_images, splits.val_labels, config.eval_batch_size, config.precision)
    synchronize(device)
    row = {
        "epoch": position.epoch + 1, "global_step": position.global_step,
        "train/loss": position.epoch_loss_sum / steps, "train/seconds": position.epoch_seconds,
        "eval/seconds": time.perf_counter() - eval_started,
        "cpu_pressure_avg10": cpu_pressure_avg10(),  # a busy neighbour inflates the seconds
        "test/loss": test["loss"], "test/acc": test["accuracy"],
        "batch_order_sha256": tensor_sha256(epoch_order(len(splits.train_images), config.seed, position.epoch)),
    }  # fmt: skip
    if val is not None:
        row |= {"val/loss": val["loss"], "val/acc": val["accuracy"]}
    return row
