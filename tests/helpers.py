"""Plain helpers for the tests: synthetic IDX datasets, the paths of the repository's own data, and the `digitlab`
command in-process: run_cli, assert_user_error, TINY (the flags of a one-second training run) and
subcommand_parsers.

Import them as `from helpers import ...` (pyproject's pytest `pythonpath` puts tests/ on the path).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from digitlab.cli import build_parser, main
from digitlab.data import idx

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"
NAMES = idx.FILES  # key -> standard file name
TINY = "--model lstm --hidden-size 16 --num-layers 1 --batch-size 50 --epochs 1 --threads 1 --device cpu".split()
TINY += ["--progress", "none"]


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


def run_cli(capsys, argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, argv, *words, code=None):
    """main(argv) fails cleanly: non-zero exit, one 'digitlab: error:' line on stderr, no traceback."""
    status, out, err = run_cli(capsys, argv)
    assert status != 0
    if code is not None:
        assert status == code
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("digitlab: error: "), err
    assert "Traceback" not in out + err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def subcommand_parsers() -> dict:
    """name -> the parser of `digitlab <name>`, as digitlab.cli builds them."""
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
