"""Non-digits as the model sees them: data.nondigits' ink planes photographed (data.photo.as_photo) and brought
to MNIST's form (mnist_like.to_mnist), as a user's picture of a letter, a star or a shirt would be.

Training with negatives (`digitlab train --negatives N`) learns from these; the rejection benchmark measures on
them. They are made here, not in digitlab.training (which must not import inference), and handed to fit as data.

Holds MIX (each family's share of a pool), prepare (one family's non-digits as uint8 28x28 images) and pool (a
seeded pool of N mixed across the families, cached on disk: a pool of 20,000 takes minutes to draw).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitlab.data import nondigits
from digitlab.data.photo import as_photo
from digitlab.inference.decode import ImageError
from digitlab.inference.mnist_like import to_mnist

# Each family's share of a training pool: letters most (the commonest thing sent that is not a digit), clothes a
# quarter (photos of things), shapes and scribbles the rest.
MIX = {"letters": 0.35, "shapes": 0.2, "scribbles": 0.2, "fashion": 0.25}
POOL_VERSION = 1  # raise when nondigits or the photo changes what a seed draws: the cache is keyed by it


def prepare(family: str, split: str, count: int, seed: int = 0, look_alikes: bool = False) -> tuple[np.ndarray, list]:
    """`count` non-digits of `family` from `split` as uint8 (count, 28, 28) images, and what each is (nondigits.
    NonDigit, its ink dropped). A drawing to_mnist finds no ink in (too faint a photo) is replaced by another."""
    images, kinds, attempt = [], [], 0
    while len(images) < count:
        drawn = nondigits.generate(
            family, split, count - len(images), seed=seed * 1000 + attempt, look_alikes=look_alikes
        )
        rng = np.random.default_rng((seed, attempt, nondigits.FAMILIES.index(family)))
        for item in drawn:
            try:
                images.append(to_mnist(as_photo(item.ink, rng), f"{family} {item.kind}"))
            except ImageError:
                continue
            kinds.append(nondigits.NonDigit(np.zeros((0, 0), np.float32), item.family, item.kind, item.source))
        attempt += 1
    return np.stack(images) if images else np.zeros((0, 28, 28), np.uint8), kinds


def pool(count: int, split: str = "train", seed: int = 0, cache: Path | None = None, log=print) -> np.ndarray:
    """`count` non-digits of `split` mixed across the families by MIX and shuffled, uint8 (count, 28, 28); kept in
    `cache` (default: digitlab's cache folder) so that the next run with the same count, split and seed reads them."""
    folder = Path(cache) if cache is not None else _cache_dir()
    path = folder / f"nondigits-v{POOL_VERSION}-{split}-{count}-seed{seed}.npy"
    if path.is_file():
        try:
            images = np.load(path)
        except (OSError, ValueError, EOFError):  # a damaged cache file: drawn again and replaced below
            images = None
        if images is not None and images.shape == (count, 28, 28):
            return images
    log(f"drawing {count} non-digits ({split} split, seed {seed}) as photos: once, then cached in {path}")
    counts = {family: int(round(share * count)) for family, share in MIX.items()}
    counts["letters"] += count - sum(counts.values())
    parts = [prepare(family, split, n, seed)[0] for family, n in counts.items() if n]
    images = np.concatenate(parts)[np.random.default_rng(seed).permutation(count)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, images)
        partial.replace(path)  # whole or not at all: another run may read it at the same time
    except OSError as error:
        log(f"note: could not cache the non-digits in {folder} ({error.strerror or error}); drawn again next time")
    return images


def _cache_dir() -> Path:
    if os.environ.get("DIGITLAB_CACHE"):
        return Path(os.environ["DIGITLAB_CACHE"]) / "nondigits"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digitlab" / "nondigits"
