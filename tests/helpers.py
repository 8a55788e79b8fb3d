"""Plain helpers for the tests: synthetic IDX datasets and the paths of the repository's own data.

Import them as `from helpers import ...` (pyproject's pytest `pythonpath` puts tests/ on the path).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from digitlab.data import idx

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"
NAMES = idx.FILES  # key -> standard file name


def synthetic_digits(
    n: int, shape=(28, 28), classes: int = 10, seed: int = 0, prototype_seed: int = 1234
) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: each class is a fixed random pattern of bright pixels (the same for every
    split, chosen by `prototype_seed`), plus noise. Every row and column carries class information, so
    row-reading sequence models, the CNN and the MLP can all learn it quickly."""
    h, w = shape
    prototypes = np.random.default_rng(prototype_seed).random((classes, h, w)) < 0.35
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    images = prototypes[labels].astype(np.float64) * 200.0 + rng.integers(0, 56, size=(n, h, w))
    flips = rng.random((n, h, w)) < 0.05  # a little pixel noise so no two images are identical
    images = np.where(flips, 255.0 - images, images)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_dataset(
    folder: Path,
    shape=(28, 28),
    n_train: int = 300,
    n_test: int = 100,
    classes: int = 10,
    gz: bool = True,
    seed: int = 0,
) -> Path:
    """Write the four standard IDX files (".gz" when `gz`) holding synthetic digits into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = synthetic_digits(n_train, shape, classes, seed=seed)
    test_images, test_labels = synthetic_digits(n_test, shape, classes, seed=seed + 1)
    suffix = ".gz" if gz else ""
    for key, array in (
        ("train_images", train_images),
        ("train_labels", train_labels),
        ("test_images", test_images),
        ("test_labels", test_labels),
    ):
        idx.write(folder / (NAMES[key] + suffix), array)
    return folder


def uncompressed_sha256(folder: Path) -> dict[str, str]:
    """file name (without .gz) -> sha256 of its uncompressed bytes, for the four files in `folder`."""
    sums = {}
    for name in NAMES.values():
        path = folder / name if (folder / name).is_file() else folder / f"{name}.gz"
        sums[name] = hashlib.sha256(idx.read_bytes(path)).hexdigest()
    return sums
