"""What a run measures between its steps: the epoch's row, validation rows every --eval-every steps, the
test evaluation (every epoch, or once at the end), and time-to-target.

Evaluation is timed apart from training and never counted in it. With --ema-decay, the weight average is
evaluated beside the raw weights (keys "ema/..."); it is then the run's model, so time-to-target reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from digitlab.data.batching import epoch_order
from digitlab.perf.machine import cpu_pressure_avg10
from digitlab.perf.timer import Stopwatch
from digitlab.store.checkpoint import tensor_sha256
from digitlab.training.evaluate import evaluate
from digitlab.training.session import Position, Session


@dataclass
class Splits:
    """The data on the training device, normalised once: batching is then index slicing."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    val_images: torch.Tensor | None
    val_labels: torch.Tensor | None


def _evaluated(session: Session, split: str, images, labels) -> dict:
    """{split/loss, split/acc} of the raw weights, and of the average as ema/split/* when there is one."""
    config, row = session.config, {}
    models = [("", session.model)] + ([("ema/", session.average.model)] if session.average is not None else [])
    for prefix, model in models:
        result = evaluate(model, images, labels, config.eval_batch_size, config.precision)
        row |= {f"{prefix}{split}/loss": result["loss"], f"{prefix}{split}/acc": result["accuracy"]}
    return row


def model_accuracy(row: dict, split: str, averaged: bool) -> float | None:
    """The accuracy of the run's model in a metrics row: the weight average's when the run keeps one."""
    return row.get(f"ema/{split}/acc" if averaged else f"{split}/acc")


def epoch_row(session: Session, splits: Splits, position: Position, with_test: bool) -> dict:
    """The epoch's metrics: training loss and seconds, then the evaluation, timed apart. An epoch cut short
    (time-to-target) averages the loss over the steps it took."""
    config, device = session.config, session.device
    clock = Stopwatch(device).start()
    evaluated = {}
    if with_test:
        evaluated |= _evaluated(session, "test", splits.test_images, splits.test_labels)
    if splits.val_images is not None:
        evaluated |= _evaluated(session, "val", splits.val_images, splits.val_labels)
    eval_seconds = clock.stop()
    row = {
        "epoch": position.epoch + 1, "global_step": position.global_step,
        "train/loss": position.epoch_loss_sum / max(position.step, 1), "train/seconds": position.epoch_seconds,
        "eval/seconds": eval_seconds,
        "cpu_pressure_avg10": cpu_pressure_avg10(),  # a busy neighbour inflates the seconds
        "batch_order_sha256": tensor_sha256(epoch_order(len(splits.train_images), config.seed, position.epoch)),
    }  # fmt: skip
    return row | evaluated


def validation_row(session: Session, splits: Splits, position: Position, steps_per_epoch: int) -> dict:
    """A mid-epoch evaluation on the validation split, where the run stands (epochs as a fraction)."""
    clock = Stopwatch(session.device).start()
    row = {
        "epoch": position.epoch + position.step / steps_per_epoch, "global_step": position.global_step,
        "train_seconds": position.run_seconds + position.epoch_seconds,
    }  # fmt: skip
    row |= _evaluated(session, "val", splits.val_images, splits.val_labels)
    return row | {"eval/seconds": clock.stop()}


def epoch_evaluation(row: dict, position: Position) -> dict:
    """The validation part of an epoch's row, as evaluations.jsonl records it beside the mid-epoch ones."""
    evaluation = {
        "epoch": float(row["epoch"]), "global_step": row["global_step"],
        "train_seconds": position.run_seconds + position.epoch_seconds,
    }  # fmt: skip
    return evaluation | {key: value for key, value in row.items() if "val/" in key}


def final_test(session: Session, splits: Splits, last_row: dict) -> dict:
    """The finished run's test metrics: the last epoch row's, or evaluated now (--test-eval final)."""
    if "test/acc" in last_row:
        return {key: value for key, value in last_row.items() if key.split("/")[-2:-1] == ["test"]}
    return _evaluated(session, "test", splits.test_images, splits.test_labels)


@dataclass
class TimeToTarget:
    """Watches validation evaluations for the first that reaches `accuracy` (AlgoPerf's time-to-result:
    training seconds only, evaluation excluded)."""

    accuracy: float
    reached: dict | None = None  # the evaluation that reached it: epoch, global_step, train_seconds, accuracy

    def check(self, session: Session, row: dict, log) -> bool:
        """Whether `row` (a validation evaluation, with the training seconds so far) or an earlier one reached it."""
        accuracy = model_accuracy(row, "val", averaged=session.average is not None)
        train_seconds = row["train_seconds"]
        if self.reached is None and accuracy is not None and accuracy >= self.accuracy:
            self.reached = {
                "epoch": row["epoch"], "global_step": row["global_step"], "train_seconds": train_seconds,
                "val_acc": accuracy,
            }  # fmt: skip
            log(
                f"reached the target: validation accuracy {accuracy:.2%} >= {self.accuracy:.2%} at epoch "
                f"{row['epoch']:.2f} (step {row['global_step']}) after {train_seconds:.1f} training seconds"
            )
        return self.reached is not None

    def record(self) -> dict:
        return {"accuracy": self.accuracy, "reached": self.reached is not None} | (self.reached or {})
