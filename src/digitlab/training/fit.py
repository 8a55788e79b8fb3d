"""fit(): one training run, from config to finished run directory, epoch after epoch (loop.train_epoch
trains each). Also here: the hooks a caller may pass (EpochHook, EvaluationHook, held as Hooks) and the
run's validation evaluations (Evaluations: written, watched by the target and the hook, probed mid-epoch).

Timing is honest: the device is synchronised before every clock read, training and evaluation are
timed apart, and checkpoint writes are excluded from (and recorded beside) the training time.
One process or many (torchrun): every process calls fit(); rank 0 alone logs and writes the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from digitlab.config import TrainConfig
from digitlab.console import EpochTable, progress_bar
from digitlab.data.batching import num_batches
from digitlab.data.dataset import Dataset, load, normalize, prepare, with_negatives
from digitlab.errors import ConfigError, TrainingError
from digitlab.perf.machine import environment, peak_rss_mb
from digitlab.store import events, lock, rundir
from digitlab.store.checkpoint import state_sha256
from digitlab.store.files import append_rows, read_rows, write_json
from digitlab.training import checkpointing, distributed
from digitlab.training.device import configure, resolve_device
from digitlab.training.loop import train_epoch, warm_up
from digitlab.training.metrics import (
    Splits,
    TimeToTarget,
    epoch_evaluation,
    epoch_row,
    final_test,
    validation_row,
)
from digitlab.training.session import Position, Session, build_session, resolve_config
from digitlab.training.stop import interrupted, stop_requests

Log = Callable[..., None]

# Called on every process after each epoch with that epoch's metrics row; returning True asks the run
# to stop there and finish (time-to-target, search pruning). Under torchrun, one process asking is enough.
EpochHook = Callable[[dict], bool]
# Called on every process with each validation evaluation as evaluations.jsonl records it (every --eval-every
# steps and at epoch ends: epoch as a fraction, training seconds so far, val/*); returning True asks the run to
# stop there and finish (a search's pruner, a time budget). Under torchrun, one process asking is enough.
EvaluationHook = Callable[[dict], bool]


def splits_on_device(data: Dataset, device: torch.device) -> Splits:
    """The data on the training device, normalised once: batching is then index slicing."""
    has_val = data.val_images is not None
    return Splits(
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
    on_evaluation: EvaluationHook | None = None,
    command: str | None = None,
    negatives: torch.Tensor | None = None,
    training_split: Callable[[Dataset], Dataset] | None = None,
) -> Path:
    """Train per `config` (continuing its run directory when `resuming`); return the finished run directory.
    `command`: the command line that started the run, recorded in its env.json (what made a shipped model).
    `negatives`: with config.negatives N, at least N non-digit images (uint8 (M, H, W)) whose first N join the
    training split (made by the caller: digitlab.inference.negatives.pool for `digitlab train`).
    `training_split`: the caller's change to the training split once validation is held out and the non-digits
    joined it (adapt: a replay subset of MNIST and a person's samples; adapt also drops the validation split
    from the evaluations after each epoch). The test split stays as it is."""
    config.validate()
    if config.negatives and (negatives is None or len(negatives) < config.negatives):
        given = 0 if negatives is None else len(negatives)
        raise ConfigError(f"--negatives {config.negatives} needs that many non-digit images; {given} were given")
    context = distributed.context_from_environment()
    log = log if context.is_main else (lambda *args, **kwargs: None)
    device = resolve_device(config.device, context)
    configure(config, context)
    distributed.init(context, device)
    try:
        with contextlib.ExitStack() as hold:  # the run directory's lock, taken by _run once the folder is known
            hooks = Hooks(on_epoch, on_evaluation)
            run_dir = _run(
                config, dataset=dataset, resuming=resuming, log=log, hooks=hooks, context=context, device=device,
                hold=hold, command=command, negatives=negatives[: config.negatives] if config.negatives else None,
                training_split=training_split,
            )  # fmt: skip
    except TrainingError:  # a divergence or a stop: every rank raises it at the same step
        distributed.shutdown(context, together=True)
        raise
    except BaseException:
        distributed.shutdown(context, together=False)
        raise
    distributed.shutdown(context, together=True)
    return run_dir


@dataclass(frozen=True)
class Hooks:
    """What fit's caller asked to be called with, on every process."""

    on_epoch: EpochHook | None = None
    on_evaluation: EvaluationHook | None = None


def _run(
    config: TrainConfig,
    *,
    dataset: Dataset | None,
    resuming: bool,
    log: Log,
    hooks: Hooks,
    context: distributed.Context,
    device: torch.device,
    hold: contextlib.ExitStack,
    command: str | None,
    negatives: torch.Tensor | None,
    training_split: Callable[[Dataset], Dataset] | None,
) -> Path:
    """The run itself, once the processes are set up: data, run directory, session, epochs, finished files."""
    if dataset is None:
        with distributed.main_first(context):  # rank 0 fetches into the cache; the others then read it
            dataset = load(config.data_dir, log=log, expect=config.dataset)
    data = prepare(dataset, config.val_size, config.train_limit, config.test_limit, config.seed)
    if negatives is not None:  # after the validation split is held out: validation and test stay digits only
        data = with_negatives(data, torch.as_tensor(negatives))
    if training_split is not None:
        data = training_split(data)
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
            "precision_requested": requested_precision, "command": command,
        }  # fmt: skip
        distributed.main_does(
            lambda: rundir.create(Path(config.run_dir), config, environment(device) | run_info), context, device
        )

    session = build_session(config, data.image_shape, data.num_classes, device, context)
    initial_weights = state_sha256(session.model)  # before any restore: the seed (or --init) alone decides it
    position = (checkpointing.restore(session, log) if resuming else None) or Position()
    splits = splits_on_device(data, device)
    if context.is_main:  # TensorBoard event files, where the package is installed (store.events)
        total_steps = num_batches(len(splits.train_images), config.batch_size) * config.epochs
        opened = events.opened(session.run_dir, config, position.global_step, total_steps, log)
        session.events = hold.enter_context(opened)
    if position.epoch == 0 and position.step == 0:
        log(
            f"training {config.model} with {config.optimizer} (lr {config.lr:g}, batch {config.batch_size}, "
            f"{config.precision}) on {len(splits.train_images)} examples, "
            f"{num_batches(len(splits.train_images), config.batch_size)} steps per epoch, device {device}, "
            f"{torch.get_num_threads()} threads, data from {data.source} ({data.title})"
            + (f", {config.negatives} of the examples non-digits" if config.negatives else "")
            + (f", starting from the weights of {config.init}" if config.init else "")
        )
    target = TimeToTarget(config.target_acc) if config.target_acc else None
    evaluations = Evaluations(session, splits, log=log, target=target, on_evaluation=hooks.on_evaluation)
    stopped_early = _epochs(session, splits, position, log=log, on_epoch=hooks.on_epoch, evaluations=evaluations)

    rows = read_rows(session.run_dir / rundir.METRICS) if context.is_main else []
    test = final_test(session, splits, rows[-1] if rows else {}) if config.test_eval != "none" else {}
    if config.test_eval == "final":
        log("test (evaluated once, now the run has ended): " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
        if session.events is not None:
            session.events.test(test, rows[-1]["global_step"] if rows else 0)
    if context.is_main:
        info = {
            "model": config.model, "image_shape": list(data.image_shape), "num_classes": data.num_classes,
            "dataset": data.name, "class_names": list(data.class_names) if data.class_names else None,
        }  # fmt: skip
        rundir.save_weights(session.run_dir, session.model, info)
        if session.average is not None:
            rundir.save_weights(session.run_dir, session.average.model, info, rundir.AVERAGE_WEIGHTS)
        write_json(session.run_dir / rundir.RESULT, {
            "final": rows[-1], "epochs": len(rows), "train_seconds_total": sum(r["train/seconds"] for r in rows),
            "peak_rss_mb": peak_rss_mb(), "deterministic": config.deterministic,
            "initial_weights_sha256": initial_weights, "world_size": context.world_size,
            "bit_reproducible": bit_identical, "stopped_early": stopped_early, "test": test,
            "weights": rundir.AVERAGE_WEIGHTS if session.average is not None else rundir.WEIGHTS,
        } | ({"target": target.record()} if target is not None else {}))  # fmt: skip
    log(f"run directory: {session.run_dir}")
    return session.run_dir


@dataclass
class Evaluations:
    """The run's validation evaluations (mid-epoch every --eval-every steps, and each epoch's), written to
    evaluations.jsonl and watched by the target and the evaluation hook; `why` says what made one stop the run."""

    session: Session
    splits: Splits
    log: Log
    target: TimeToTarget | None
    on_evaluation: EvaluationHook | None
    why: str = ""  # what the evaluation that stopped the run found; empty while none has

    def record(self, evaluation: dict) -> bool:
        """Write a validation evaluation; True when it reaches the target or the evaluation hook asks to stop."""
        session = self.session
        if session.context.is_main:
            append_rows(session.run_dir / rundir.EVALUATIONS, [evaluation])
        if session.events is not None:
            session.events.evaluation(evaluation)
        reached = self.target is not None and self.target.check(session, evaluation, self.log)
        asked = self.on_evaluation is not None and bool(self.on_evaluation(evaluation))
        if reached or asked:
            self.why = "the target was reached" if reached else "the evaluation hook asked to"
        return reached or asked

    def probe(self, position: Position) -> bool:
        """--eval-every, inside the epoch (loop.train_epoch's probe): every rank stops at the same step."""
        session, splits = self.session, self.splits
        steps = num_batches(len(splits.train_images), session.config.batch_size)
        row = validation_row(session, splits, position, steps)
        return distributed.any_rank([self.record(row)], session.context, session.device)[0]


def _epochs(
    session: Session, splits: Splits, position: Position, *, log: Log, on_epoch: EpochHook | None,
    evaluations: Evaluations,
) -> bool:  # fmt: skip
    """Train epoch after epoch to config.epochs; return True when a hook or the target stopped it sooner."""
    config, context, device = session.config, session.context, session.device
    steps = num_batches(len(splits.train_images), config.batch_size)
    # Timed apart, so that the first epoch of this process is as comparable as the others.
    setup_seconds = None
    if position.epoch < config.epochs:
        setup_seconds = warm_up(session, splits.train_images, splits.train_labels)
        log(f"set-up (one forward/backward pass, timed apart from epoch {position.epoch + 1}): {setup_seconds:.2f} s")
    table = EpochTable(
        has_val=splits.val_images is not None, print_line=log, has_average=session.average is not None,
        has_test=config.test_eval == "every-epoch",
    )  # fmt: skip
    table.header()
    probe = evaluations.probe if config.eval_every and splits.val_images is not None else None
    with stop_requests(session.stop_signals):
        while position.epoch < config.epochs:
            mode = config.progress if context.is_main else "none"
            with progress_bar(steps, position.step, f"epoch {position.epoch + 1}/{config.epochs}", mode) as bar:
                train_epoch(session, splits.train_images, splits.train_labels, position, bar, probe)
            cut = position.step < steps  # a mid-epoch evaluation stopped the run (the target or its hook)
            row = epoch_row(session, splits, position, with_test=config.test_eval == "every-epoch")
            if setup_seconds is not None:  # in the row of this process's first epoch
                row["setup/seconds"], setup_seconds = setup_seconds, None
            if context.is_main:
                append_rows(session.run_dir / rundir.METRICS, [row])
            if session.events is not None:
                session.events.epoch(row)
            table.row(row)
            evaluation_stop = cut
            if not cut and splits.val_images is not None:
                evaluation_stop = evaluations.record(epoch_evaluation(row, position))
            position = Position(
                epoch=position.epoch + 1, global_step=position.global_step, last_finite_loss=position.last_finite_loss,
                run_seconds=position.run_seconds + position.epoch_seconds,
            )  # fmt: skip
            checkpointing.save(session, position)
            asked = bool(on_epoch(row)) if on_epoch is not None else False
            stop, hook_stop = distributed.any_rank(
                [bool(session.stop_signals), asked or evaluation_stop], context, device
            )
            if hook_stop and (position.epoch < config.epochs or cut):
                why = evaluations.why if evaluation_stop else "the epoch hook asked to"
                log(f"stopping after epoch {position.epoch}: {why}")
                return True
            if stop and position.epoch < config.epochs:  # after the last epoch, finishing is quicker
                raise interrupted(session, f"after epoch {position.epoch}")
    target = evaluations.target
    if target is not None and target.reached is None:
        log(f"the target validation accuracy {config.target_acc:.2%} was not reached in {config.epochs} epochs")
    return False
