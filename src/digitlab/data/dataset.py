"""Datasets as tensors in memory: load and verify the IDX files (or read a person's samples folder), split, add
non-digits to train on, normalise."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digitlab.data.fetch import Located, locate, named_folder
from digitlab.data.idx import FILES, is_gzip, parse, read_file, sha256
from digitlab.data.known import CUSTOM, DATASET_CHOICES, KNOWN, KnownDataset, identify, matching_files
from digitlab.data.samples_files import NOT_A_DIGIT, is_samples_folder, read_samples
from digitlab.errors import DataError

# MNIST's training-set pixel statistics after scaling to [0, 1]; training and predict both use these.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


@dataclass
class Dataset:
    """Images as uint8 (N, H, W) and labels as int64 (N,), plus where they came from and what they are."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    checksums: dict[str, str]  # file name -> sha256 of its uncompressed bytes
    name: str = CUSTOM  # a key of data.known.KNOWN when the files are that dataset's, else "custom"
    class_names: tuple[str, ...] | None = None  # by label; None for a custom dataset
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None

    @property
    def verified(self) -> bool:
        """Whether the files were checked against a known dataset's published checksums."""
        return self.name != CUSTOM

    @property
    def title(self) -> str:
        return KNOWN[self.name].title if self.verified else "custom data"

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


def load(data_dir: str | Path | None = None, log=print, expect: str = "auto") -> Dataset:
    """Find, read, validate and identify the four files; raise DataError with one clear line if unusable.

    expect: "auto" (any known dataset, or custom files in a folder the user named), a key of KNOWN (the
    files must be that dataset), or "custom" (take the files as they are)."""
    if expect not in DATASET_CHOICES:
        raise DataError(f"unknown dataset {expect!r}; choose one of: {', '.join(DATASET_CHOICES)}")
    if is_samples_folder(data_dir):
        return from_samples(Path(data_dir), log)
    if expect not in ("auto", "mnist") and not named_folder(data_dir):
        wanted = KNOWN[expect].title if expect in KNOWN else "custom data"
        raise DataError(
            f"{wanted} was asked for (--dataset {expect}) but no --data-dir was given, and digitlab fetches only "
            f"MNIST: pass the folder holding its four IDX files with --data-dir"
        )
    located: Located = locate(data_dir, log=log)
    arrays, checksums, gzip_md5 = {}, {}, {}
    for key, path in located.paths.items():
        raw, data = read_file(path)
        checksums[FILES[key]] = sha256(data)
        if is_gzip(raw):
            gzip_md5[FILES[key]] = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        arrays[key] = parse(data, ndim=3 if key.endswith("images") else 1, source=str(path))
    _check_consistent(arrays, located.folder)
    known = _identify(located, checksums, gzip_md5, expect)
    if expect == CUSTOM:
        log(f"note: --dataset custom: the files in {located.folder} are used as they are, unverified")
    elif known is None:
        log(f"note: {located.folder} holds no dataset digitlab knows: its files are used unverified, as custom data")
    elif known.name != "mnist":  # MNIST is what digitlab expects; a drop-in is worth a line
        log(f"note: {located.folder} holds {known.title}, verified against its published checksums")
    tensor = {key: torch.from_numpy(array.copy()) for key, array in arrays.items()}
    return Dataset(
        tensor["train_images"],
        tensor["train_labels"].long(),
        tensor["test_images"],
        tensor["test_labels"].long(),
        located.source,
        checksums,
        known.name if known else CUSTOM,
        known.classes if known else None,
    )


def _identify(located: Located, checksums: dict, gzip_md5: dict, expect: str) -> KnownDataset | None:
    """The known dataset the files are (None: custom), or DataError where they must be another."""
    known, partial = identify(checksums, gzip_md5)
    must_be = "mnist" if located.must_be_mnist else (None if expect in ("auto", CUSTOM) else expect)
    if must_be and (known is None or known.name != must_be):
        title = KNOWN[must_be].title
        bad = [name for name in checksums if name not in matching_files(KNOWN[must_be], checksums, gzip_md5)]
        fix = "delete the cache folder to fetch it again" if located.must_be_mnist else "replace them with a good copy"
        what = f"are {known.title}" if known else f"do not match {title}'s published checksums"
        raise DataError(f"{located.folder}: {', '.join(bad)} {what}, and {title} is required here: {fix}")
    if expect == CUSTOM:
        return None
    if known is None and partial is not None:
        bad = [name for name in checksums if name not in matching_files(partial, checksums, gzip_md5)]
        raise DataError(
            f"{located.folder}: {', '.join(bad)} do{'es' if len(bad) == 1 else ''} not match {partial.title}'s "
            f"published checksums while the other files do; the copy is corrupt: replace it, or pass "
            f"--dataset custom to train on the files as they are"
        )
    return known


def _check_consistent(arrays: dict[str, np.ndarray], folder: Path) -> None:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(
                f"{folder}: {split} set has {len(images)} images but {len(labels)} labels; "
                f"the files do not belong together"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(
            f"{folder}: training images are {arrays['train_images'].shape[1:]} but test images are "
            f"{arrays['test_images'].shape[1:]}; both sets need the same image size"
        )
    for split in ("train", "test"):
        labels = arrays[f"{split}_labels"]
        if labels.max() >= 100:
            raise DataError(
                f"{folder}: {split} labels go up to {labels.max()}; labels must be class numbers "
                f"0..99 (is the labels file an images file?)"
            )


def prepare(dataset: Dataset, val_size: int = 0, train_limit: int = 0, test_limit: int = 0, seed: int = 0) -> Dataset:
    """Apply the quick-run limits, then hold out `val_size` training examples (a seeded random choice)."""
    train_images, train_labels = dataset.train_images, dataset.train_labels
    test_images, test_labels = dataset.test_images, dataset.test_labels
    if train_limit:
        train_images, train_labels = train_images[:train_limit], train_labels[:train_limit]
    if test_limit:
        test_images, test_labels = test_images[:test_limit], test_labels[:test_limit]
    val_images = val_labels = None
    if val_size:
        if val_size >= len(train_images):
            raise DataError(
                f"--val-size {val_size} leaves no training data (the training set has "
                f"{len(train_images)} examples); choose a smaller validation split"
            )
        # The split depends on the seed alone, so every run with that seed validates on the same examples.
        order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(10_007 + seed))
        val_index, train_index = order[:val_size].sort().values, order[val_size:].sort().values
        val_images, val_labels = train_images[val_index], train_labels[val_index]
        train_images, train_labels = train_images[train_index], train_labels[train_index]
    return dataclasses.replace(
        dataset,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        val_images=val_images,
        val_labels=val_labels,
    )


def from_samples(folder: Path, log=print) -> Dataset:
    """A person's samples folder as a dataset: its digit samples are both the training and the test split (to
    evaluate a model on a person's writing, or to train on it alone); its "not a digit" samples are left out."""
    records, images, labels = read_samples(folder)
    digits = labels != NOT_A_DIGIT
    if not digits.any():
        raise DataError(f"{folder} holds no digit samples; add some with 'digitlab samples add {folder} LABEL IMAGE'")
    log(f"note: {folder} is a samples folder: its {int(digits.sum())} digit samples are the training and test data")
    images, labels = torch.from_numpy(images[digits]), torch.from_numpy(labels[digits])
    ids = "".join(record["id"] for record, keep in zip(records, digits) if keep)
    return Dataset(
        images, labels, images.clone(), labels.clone(), f"samples folder {folder}",
        {"samples": hashlib.sha256(ids.encode()).hexdigest()}, CUSTOM, None,
    )  # fmt: skip


def with_negatives(dataset: Dataset, images: torch.Tensor) -> Dataset:
    """The dataset with `images` (uint8 (N, H, W), non-digits) appended to its training split, labelled NOT_A_DIGIT."""
    if tuple(images.shape[1:]) != dataset.image_shape:
        raise DataError(
            f"the non-digits are {tuple(images.shape[1:])} images but the dataset's are {dataset.image_shape}; "
            f"--negatives needs 28x28 data such as MNIST"
        )
    return dataclasses.replace(
        dataset,
        train_images=torch.cat([dataset.train_images, images.to(dataset.train_images.dtype)]),
        train_labels=torch.cat([dataset.train_labels, torch.full((len(images),), NOT_A_DIGIT, dtype=torch.long)]),
    )


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (any shape) -> float32, scaled to [0, 1] and standardised with MNIST's statistics."""
    return (images.float() / 255.0 - MNIST_MEAN) / MNIST_STD
