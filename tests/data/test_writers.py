"""digitlab.data.writers: every style writes every digit, the same for a seed; a style's quirks are there every
time and its samples differ from each other by less than they differ from another hand; unknown styles and
digits are refused in one line; the photos land in one folder per digit. And data.pen.draw's fixed settings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitlab.data import pen, writers
from digitlab.data.writers import STYLES, Style
from digitlab.errors import ConfigError


@pytest.fixture
def plain(monkeypatch) -> str:
    """A writer of the plain hand, upright, with an ordinary pen: what the quirks are measured against."""
    monkeypatch.setitem(STYLES, "plain", Style("the plain hand", slant=0.0))
    return "plain"


def _box(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero((ink > 0.5).any(axis=1)), np.flatnonzero((ink > 0.5).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _aspect(ink: np.ndarray) -> float:
    box = _box(ink)
    return box.shape[1] / box.shape[0]


def _normalised(ink: np.ndarray) -> np.ndarray:
    """The ink's box centred in a square, reduced to 16x16 and blurred: position and size taken away, shape, slant
    and proportions kept."""
    box = _box(ink)
    side = max(box.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - box.shape[0]) // 2, (side - box.shape[1]) // 2
    square[top : top + box.shape[0], left : left + box.shape[1]] = box
    return ndimage.gaussian_filter(np.asarray(Image.fromarray(square).resize((16, 16), Image.Resampling.BOX)), 1)


def _pen_width(ink: np.ndarray) -> float:
    """The widest stroke as a share of the canvas side."""
    return 2 * float(ndimage.distance_transform_edt(ink > 0.5).max()) / ink.shape[0]


def _lean(ink: np.ndarray) -> float:
    """How far the ink's middle moves right per row going up, in units of its height (0: upright)."""
    box = _box(ink) > 0.5
    rows = np.flatnonzero(box.any(axis=1))
    middles = np.array([np.flatnonzero(box[row]).mean() for row in rows])
    return -float(np.polyfit(rows, middles, 1)[0])


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_writes_every_digit(style):
    inks, labels = writers.samples(style, 1, seed=0)
    assert list(labels) == list(range(10)) and len(inks) == 10
    for ink in inks:
        assert ink.dtype == np.float32 and ink.ndim == 2 and 0.0 <= ink.min() and ink.max() <= 1.0
        assert ink.max() > 0.9 and 0.01 < (ink > 0.5).mean() < 0.6  # ink on a page, not a blank or a full page


def test_a_seed_writes_the_same_and_another_seed_others():
    first, labels = writers.samples("continental", 2, seed=3)
    again, labels_again = writers.samples("continental", 2, seed=3)
    other, _ = writers.samples("continental", 2, seed=4)
    assert np.array_equal(labels, labels_again)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not any(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other))


def test_a_continental_one_has_its_flag_every_time(plain):
    continental = [writers.write("continental", 1, np.random.default_rng(seed)) for seed in range(8)]
    upright = [writers.write(plain, 1, np.random.default_rng(seed)) for seed in range(8)]
    assert min(_aspect(ink) for ink in continental) > 0.3 > max(_aspect(ink) for ink in upright)


def test_the_slanted_writer_leans_right_and_the_plain_one_does_not(plain):
    slanted = [_lean(writers.write("slanted", 1, np.random.default_rng(seed))) for seed in range(8)]
    upright = [_lean(writers.write(plain, 1, np.random.default_rng(seed))) for seed in range(8)]
    assert min(slanted) > 0.3 and max(abs(lean) for lean in upright) < 0.2


def test_the_marker_lays_more_ink_than_a_pen(plain):
    marker = [_pen_width(writers.write("marker", 7, np.random.default_rng(seed))) for seed in range(8)]
    upright = [_pen_width(writers.write(plain, 7, np.random.default_rng(seed))) for seed in range(8)]
    assert min(marker) > 1.5 * max(upright)


@pytest.mark.parametrize(
    ("style", "digit"), [("continental", 1), ("printed", 0), ("printed", 2), ("looped", 7), ("slanted", 4)]
)
def test_samples_of_a_style_differ_by_jitter_less_than_from_another_hand(plain, style, digit):
    own = [_normalised(writers.write(style, digit, np.random.default_rng(seed))) for seed in range(8)]
    others = [_normalised(writers.write(plain, digit, np.random.default_rng(100 + seed))) for seed in range(8)]
    own_mean, other_mean = np.mean(own, axis=0), np.mean(others, axis=0)
    to_own = np.array([np.abs(sample - own_mean).mean() for sample in own])
    to_other = np.array([np.abs(sample - other_mean).mean() for sample in own])
    assert (to_own > 0).all() and (to_own < 0.08).all()  # never the same twice, but only jitter apart
    assert (to_own < to_other).all()  # every sample nearer its own hand than the plain hand


def test_an_unknown_style_or_digit_is_refused_in_one_line():
    with pytest.raises(ConfigError) as caught:
        writers.samples("gothic", 1, seed=0)
    message = str(caught.value)
    assert "\n" not in message and "gothic" in message and all(name in message for name in STYLES)
    with pytest.raises(ConfigError, match="0-9"):
        writers.write("marker", 10, np.random.default_rng(0))


def test_save_photos_writes_one_folder_per_digit(tmp_path):
    saved = writers.save_photos("looped", 2, seed=0, folder=tmp_path)
    assert len(saved) == 20 and sorted(label for _, label in saved) == sorted(list(range(10)) * 2)
    for path, label in saved:
        assert path.parent == tmp_path / str(label) and path.suffix == ".png"
        with Image.open(path) as image:
            assert image.mode == "RGB" and min(image.size) >= 64


def test_pen_draw_takes_a_fixed_slant_turn_stretch_and_width():
    line = [np.array([[0.0, 0.0], [0.0, 1.0]])]
    straight = pen.draw(line, np.random.default_rng(0), jitter=0, angle=0, slant=0, stretch=1, width=0.05)
    box = _box(straight)
    assert box.shape[1] <= 0.07 * straight.shape[0] + 2  # a vertical line as wide as the pen, not leaning
    leaning = pen.draw(line, np.random.default_rng(0), jitter=0, angle=0, slant=-1.0, stretch=1, width=0.05)
    assert _lean(leaning) > 0.8
    thick = pen.draw(line, np.random.default_rng(0), jitter=0, angle=0, slant=0, stretch=1, width=0.2)
    assert _box(thick).shape[1] > 3 * box.shape[1]
