"""Ink rendered as a photo (digitlab.data.photo): seeded, paper-like, and still the same digit once prepared."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.data.photo import as_photo, draw_style
from digitlab.inference.mnist_like import to_mnist


def ring(size: int = 96) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size]
    radius = np.hypot(rows - size / 2, (cols - size / 2) * 1.5)
    return np.clip(1 - np.abs(radius - size / 3) / 4, 0, 1).astype(np.float32)  # an upright ellipse: a zero


def test_same_seed_same_photo_and_another_seed_another():
    ink = ring()
    first = np.asarray(as_photo(ink, np.random.default_rng(3)))
    again = np.asarray(as_photo(ink, np.random.default_rng(3)))
    other = np.asarray(as_photo(ink, np.random.default_rng(4)))
    assert first.shape == (96, 96, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("seed", range(8))
def test_ink_is_darker_than_paper_and_the_prepared_digit_matches_the_clean_one(seed):
    ink = ring()
    photo = np.asarray(as_photo(ink, np.random.default_rng(seed)).convert("L"), dtype=np.float32)
    assert photo[ink > 0.9].mean() < photo[ink == 0].mean() - 60  # dark pen on light paper, by a wide margin
    from PIL import Image

    clean = to_mnist(Image.fromarray(np.round((1 - ink) * 255).astype(np.uint8)), "clean").astype(np.float32)
    prepared = to_mnist(as_photo(ink, np.random.default_rng(seed)), "photo").astype(np.float32)
    # the same shape once prepared: most of the ink lands where the clean digit's does, give or take a pixel of
    # centring (a thin ring shifted by one pixel overlaps itself by half)
    overlap = max(
        np.minimum(clean, np.roll(prepared, (dy, dx), axis=(0, 1))).sum() / clean.sum()
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )
    assert overlap > 0.8


def test_styles_stay_readable():
    rng = np.random.default_rng(0)
    for _ in range(200):
        style = draw_style(rng)
        luminance = np.array([0.299, 0.587, 0.114])
        assert luminance @ style.paper - luminance @ style.pen > 0.3  # the pen always stands out from the paper
        assert style.blur <= 1.0 and 55 <= style.quality <= 95


def test_an_ink_plane_must_be_two_dimensional():
    with pytest.raises(ValueError, match="ink plane"):
        as_photo(np.zeros((4, 4, 3)), np.random.default_rng(0))
