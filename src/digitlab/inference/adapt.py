"""Adapting a finished model to one person's hand: `digitlab adapt`.

A model trained on MNIST reads most people and misreads some (a continental 1, a crossed 7, an open 4). adapt()
fine-tunes a finished run (or the shipped model) on a person's samples (store.samples) for a few short epochs:
the samples, repeated and augmented as the run's own recipe augments, are mixed with a replay of MNIST's
training split (so that the model forgets nothing) and, where the model learnt to refuse non-digits, with
non-digits (inference.negatives) so that it keeps refusing them. The result is an ordinary finished run
directory, calibrated on the same validation digits as the run it came from, with `adapt.json` recording the
samples it saw and held out and the accuracies before and after.

The run is trained in a hidden folder beside OUT and renamed to OUT only when finished and calibrated: a killed
adapt leaves no half-made run under OUT (the hidden folder is removed by the next adapt to that OUT).

Holds the fine-tuning settings (EPOCHS, LR, REPLAY, SAMPLE_SHARE, NEGATIVE_REPLAY, MIN_SAMPLES), split_held_out
(the person's held-out split), adapt, and ADAPT_RECORD.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from digitlab.data.dataset import NOT_A_DIGIT, Dataset
from digitlab.errors import ConfigError, DataError, RunError
from digitlab.store import rundir
from digitlab.store.files import read_json, write_json

ADAPT_RECORD = "adapt.json"
EPOCHS = 3  # short: a person waits for it
LR = 0.001  # a tenth to a third of what the recipes train with: the weights move, they are not retrained
REPLAY = 3_000  # MNIST training digits mixed in per epoch, a fresh seeded choice each adapt
SAMPLE_SHARE = 0.25  # the samples' share of the examples each epoch (repeated to reach it)
NEGATIVE_REPLAY = 1_000  # generated non-digits mixed in when the model was trained to refuse them
MIN_SAMPLES = 10  # digit samples left to adapt on after the held-out split


def split_held_out(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A boolean mask of the samples held out to measure the person's accuracy: `share` of each label's samples
    (seeded), rounded down, never the last of a label (every label it has is adapted on)."""
    held = np.zeros(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        count = min(int(share * len(where)), len(where) - 1)
        held[rng.permutation(where)[:count]] = True
    return held


def adapt(
    base: str | Path | None,
    images: np.ndarray,
    labels: np.ndarray,
    out: str | Path,
    *,
    sample_ids: list[str] | None = None,
    samples_folder: str | None = None,
    holdout: float = 0.2,
    seed: int = 0,
    data_dir: str | None = None,
    epochs: int = EPOCHS,
    log=print,
) -> dict:
    """Fine-tune `base` (a finished run; None: the shipped model) on the samples `images` (uint8 (N, 28, 28)) with
    `labels` (0-9, or NOT_A_DIGIT for a picture that is none), holding `holdout` of them out; write the finished,
    calibrated run to `out` and return (and write to out/adapt.json) what it saw and the accuracies before and
    after: on the held-out samples and on MNIST's test set."""
    from digitlab.inference.calibration import calibrate_run
    from digitlab.inference.classifier import DEFAULT_MODEL, open_classifier
    from digitlab.training.fit import fit

    base_dir = Path(base) if base is not None else DEFAULT_MODEL
    out = Path(out)
    images, labels = np.asarray(images), np.asarray(labels, dtype=np.int64)
    ids = list(sample_ids) if sample_ids is not None else [str(index) for index in range(len(labels))]
    base_config = _base_config(base_dir)
    _check_samples(images, labels, base_config)
    if not 0 <= holdout < 1:
        raise ConfigError(f"--holdout must be at least 0 and below 1, got {holdout}")
    if out.exists():
        raise RunError(f"{out} already exists; choose a new --out for the adapted run (or remove that one)")
    held = split_held_out(labels, holdout, seed)
    taught = ~held & (labels != NOT_A_DIGIT)
    if taught.sum() < MIN_SAMPLES:
        raise DataError(
            f"{int(taught.sum())} digit samples are left to adapt on ({int(held.sum())} held out); adapting needs at "
            f"least {MIN_SAMPLES}: add more (digitlab samples add) or lower --holdout"
        )
    staging = out.parent / f".{out.name}.adapting"
    shutil.rmtree(staging, ignore_errors=True)  # a killed adapt's leftovers
    negatives = None
    if base_config.negatives:  # the model learnt to refuse non-digits: keep reminding it
        from digitlab.inference.negatives import pool

        negatives = torch.from_numpy(pool(NEGATIVE_REPLAY, "train", seed, log=log))
    person_negatives = torch.from_numpy(images[~held & (labels == NOT_A_DIGIT)])
    if len(person_negatives):
        negatives = person_negatives if negatives is None else torch.cat([negatives, person_negatives])
    config = base_config.replace(
        init=str(base_dir), epochs=epochs, lr=LR, ema_decay=0.0, eval_every=0, target_acc=0.0,
        test_eval="final", data_dir=data_dir, run_dir=str(staging), checkpoint_every=0, progress="none",
        negatives=len(negatives) if negatives is not None else 0,
        # the validation digits must be those the base held out (its seed draws them): its calibration and ours
        # are fitted on them; `seed` chooses the held-out samples and the replay instead
        seed=base_config.seed, val_size=base_config.val_size, train_limit=base_config.train_limit,
    )  # fmt: skip
    replay_seed = seed

    def mixed(data: Dataset) -> Dataset:  # the training split: MNIST replay, the samples, the non-digits
        return _mix(data, torch.from_numpy(images[taught]), torch.from_numpy(labels[taught]), replay_seed)

    started = time.perf_counter()
    try:
        fit(config, negatives=negatives, training_split=mixed, log=log, command=f"digitlab adapt {base_dir}")
        calibrate_run(staging, data_dir)
        seconds = time.perf_counter() - started
        before, after = open_classifier(base), open_classifier(staging)
        record = {
            "base": str(base_dir),
            "samples": samples_folder,
            "adapted_on": [ids[i] for i in np.flatnonzero(~held)],
            "held_out": [ids[i] for i in np.flatnonzero(held)],
            "seconds": seconds,
            "before": _scores(before, base_dir, images[held], labels[held]),
            "after": _scores(after, staging, images[held], labels[held]),
            "settings": {"epochs": epochs, "lr": LR, "replay": REPLAY, "sample_share": SAMPLE_SHARE},
        }
        write_json(staging / ADAPT_RECORD, record)
        # the run's own record of where it lives, then the rename that makes it appear whole under OUT
        write_json(staging / rundir.CONFIG, rundir.load_config(staging).replace(run_dir=str(out)).to_dict())
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record | {"run_dir": str(out)}


def _base_config(base_dir: Path):
    if not rundir.is_finished(base_dir):
        raise RunError(
            f"{base_dir} is not a finished run directory; pass one printed by 'digitlab train' (or nothing for the "
            f"shipped model)"
        )
    config = rundir.load_config(base_dir)
    if not config.val_size:
        raise RunError(f"{base_dir} has no validation split to calibrate the adapted model on; adapt a run trained "
                       f"with --val-size")  # fmt: skip
    return config


def _check_samples(images: np.ndarray, labels: np.ndarray, config) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8 or len(images) != len(labels):
        raise DataError(f"samples are uint8 (N, 28, 28) images with N labels, got {images.dtype} {images.shape}")
    unknown = sorted({int(v) for v in labels} - {*range(10), NOT_A_DIGIT})
    if unknown:
        raise DataError(f"labels {unknown} are not digits 0-9 or not-a-digit ({NOT_A_DIGIT})")


def _mix(data: Dataset, images: torch.Tensor, labels: torch.Tensor, seed: int) -> Dataset:
    """The training split cut to REPLAY seeded MNIST digits (and every non-digit already in it), with the samples
    repeated to SAMPLE_SHARE of the result; no validation split to evaluate after each epoch (a person waits:
    adapt measures on the held-out samples and the test set, and calibrate_run draws the validation digits
    again for the calibration)."""
    train_images, train_labels = data.train_images, data.train_labels
    digits = torch.nonzero(train_labels != NOT_A_DIGIT).flatten()
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(20_011 + seed))
    keep = torch.cat([digits[order[:REPLAY]], torch.nonzero(train_labels == NOT_A_DIGIT).flatten()])
    repeats = max(1, math.ceil(SAMPLE_SHARE / (1 - SAMPLE_SHARE) * len(keep) / len(labels)))
    return dataclasses.replace(
        data,
        train_images=torch.cat([train_images[keep], images.repeat(repeats, 1, 1).to(train_images.dtype)]),
        train_labels=torch.cat([train_labels[keep], labels.repeat(repeats)]),
        val_images=None,
        val_labels=None,
    )


def _scores(classifier, run_dir: Path, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy on the held-out samples (a not-a-digit sample is right when refused) and the run's MNIST test
    accuracy with the weights it answers with (from its result.json)."""
    result = read_json(run_dir / rundir.RESULT)
    test = result.get("test", {})
    prefix = "ema/" if result.get("weights") == rundir.AVERAGE_WEIGHTS else ""
    scores = {"mnist_test_acc": test.get(f"{prefix}test/acc"), "held_out": int(len(labels))}
    if len(labels):
        probabilities = classifier.probabilities(images)
        guess = probabilities.argmax(axis=1)
        refused = probabilities.max(axis=1) < (classifier.reject_below or 0.0)
        right = np.where(labels == NOT_A_DIGIT, refused, (guess == labels) & ~refused)
        scores["held_out_acc"] = float(right.mean())
    return scores
