"""digitlab.data.nondigits and data.pen: every family drawn as ink planes, the same for a seed, disjoint splits
(fonts, seeds, Fashion-MNIST's images), the digit look-alikes never in the training split."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.data import nondigits, pen
from digitlab.data.nondigits import FAMILIES, LOOK_ALIKES, generate

HAS_FASHION = any((nondigits.FASHION_DIR / f"train-images-idx3-ubyte{gz}").is_file() for gz in ("", ".gz"))
FAMILIES_HERE = [f for f in FAMILIES if f != "fashion" or HAS_FASHION]


@pytest.mark.parametrize("family", FAMILIES_HERE)
def test_every_family_draws_ink_planes(family):
    drawn = generate(family, "validation", 12)
    assert len(drawn) == 12
    for item in drawn:
        assert item.family == family and item.ink.dtype == np.float32 and item.ink.ndim == 2
        assert 0.0 <= item.ink.min() and item.ink.max() <= 1.0
        assert item.ink.max() > 0.5 and (item.ink > 0.5).mean() < 0.6  # ink on a page, not a blank or a full page


@pytest.mark.parametrize("family", FAMILIES_HERE)
def test_a_seed_draws_the_same_and_another_seed_and_split_draw_others(family):
    first, again = generate(family, "train", 6, seed=3), generate(family, "train", 6, seed=3)
    assert all(np.array_equal(a.ink, b.ink) and a.kind == b.kind for a, b in zip(first, again))
    for other in (generate(family, "train", 6, seed=4), generate(family, "validation", 6, seed=3)):
        assert not all(a.ink.shape == b.ink.shape and np.array_equal(a.ink, b.ink) for a, b in zip(first, other))


def test_the_splits_use_other_fonts():
    hershey = [set(nondigits.HERSHEY_FONTS[split]) for split in nondigits.SPLITS]
    truetype = [set(nondigits.TRUETYPE_FOLDERS[split]) for split in nondigits.SPLITS]
    for fonts in (hershey, truetype):
        assert all(not (fonts[i] & fonts[j]) for i in range(3) for j in range(i + 1, 3))
    sources = {split: {item.source for item in generate("letters", split, 60)} for split in nondigits.SPLITS}
    assert not (sources["train"] & sources["validation"]) and not (sources["train"] & sources["benchmark"])
    assert not (sources["validation"] & sources["benchmark"])


@pytest.mark.skipif(not HAS_FASHION, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_splits_take_disjoint_images():
    train, validation = nondigits.fashion_indices("train")[1], nondigits.fashion_indices("validation")[1]
    assert not set(train) & set(validation) and len(train) + len(validation) == 60_000
    assert nondigits.fashion_indices("benchmark")[0] == "test"
    assert all(item.source.startswith("fashion-mnist:test:") for item in generate("fashion", "benchmark", 5))


def test_look_alikes_are_never_trained_on():
    kinds = {item.kind for family in ("letters", "shapes") for item in generate(family, "train", 400)}
    assert not kinds & LOOK_ALIKES
    assert {"O", "l", "S", "Z", "B", "g", "|", "ellipse", "line"} <= LOOK_ALIKES
    with pytest.raises(ValueError, match="never trained on"):
        generate("letters", "train", 5, look_alikes=True)
    asked = {item.kind for item in generate("letters", "benchmark", 400, look_alikes=True)}
    assert asked & LOOK_ALIKES and asked - LOOK_ALIKES  # a benchmark that asks gets both


def test_unknown_family_or_split_is_refused():
    with pytest.raises(ValueError, match="families"):
        generate("emoji", "train", 1)
    with pytest.raises(ValueError, match="splits"):
        generate("shapes", "test", 1)


def test_the_pen_draws_every_shape_and_scribble():
    rng = np.random.default_rng(0)
    for name, make in (pen.SHAPES | pen.LOOK_ALIKE_SHAPES | pen.SCRIBBLES).items():
        strokes, filled = make(rng)
        ink = pen.draw(strokes, rng, filled)
        assert ink.max() == 1.0 and 64 <= ink.shape[0] <= 160, name
