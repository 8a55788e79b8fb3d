"""Datasets as tensors in memory: load and verify the IDX files, split, normalise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digitlab.data.fetch import Located, locate
from digitlab.data.idx import FILES, MNIST_SHA256, MNIST_SHAPES, parse, read_bytes, sha256
from digitlab.errors import DataError

# MNIST's training-set pixel statistics after scaling to [0, 1]; training and predict both use these.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


@dataclass
class Dataset:
    """Images as uint8 (N, H, W) and labels as int64 (N,), plus where they came from."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    checksums: dict[str, str]  # file name -> sha256 of its uncompressed bytes
    verified: bool  # True when the files are MNIST's, checked against the published sums
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


def load(data_dir: str | Path | None = None, log=print) -> Dataset:
    """Find, read, validate and verify the four files; raise DataError with one clear line if unusable."""
    located: Located = locate(data_dir, log=log)
    arrays, checksums = {}, {}
    for key, path in located.paths.items():
        data = read_bytes(path)
        checksums[FILES[key]] = sha256(data)
        arrays[key] = parse(data, ndim=3 if key.endswith("images") else 1, source=str(path))
    _check_consistent(arrays, located.folder)

    is_mnist_shaped = all(arrays[key].shape == shape for key, shape in MNIST_SHAPES.items())
    verified = all(checksums[name] == digest for name, digest in MNIST_SHA256.items())
    if is_mnist_shaped and not verified:
        bad = [name for name, digest in MNIST_SHA256.items() if checksums[name] != digest]
        raise DataError(
            f"{located.folder}: {', '.join(bad)} ha{'ve' if len(bad) > 1 else 's'} MNIST's shape but "
            f"not its sha256; the copy is corrupt: replace it (or delete the cache folder to refetch)"
        )
    if not verified:
        log(f"note: {located.folder} does not hold MNIST; checksum verification skipped for this custom dataset")

    tensor = {key: torch.from_numpy(array.copy()) for key, array in arrays.items()}
    return Dataset(
        tensor["train_images"],
        tensor["train_labels"].long(),
        tensor["test_images"],
        tensor["test_labels"].long(),
        located.source,
        checksums,
        verified,
    )


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
    return Dataset(
        train_images,
        train_labels,
        test_images,
        test_labels,
        dataset.source,
        dataset.checksums,
        dataset.verified,
        val_images,
        val_labels,
    )


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (any shape) -> float32, scaled to [0, 1] and standardised with MNIST's statistics."""
    return (images.float() / 255.0 - MNIST_MEAN) / MNIST_STD
