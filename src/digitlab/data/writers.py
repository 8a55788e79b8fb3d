"""Simulated writers: people whose digits an MNIST-trained model reads badly, each with a consistent hand.

A writer is a style: a fixed set of stroke templates for the digits 0-9 (the plain hand below, some digits
replaced by the writer's own forms) and a fixed slant, turn, width and pen. Every sample of a style has the
same quirks; only what changes from one written digit to the next changes (position and size on the page, the
pen's wobble, a little slant, turn and pressure). Digits are drawn by data.pen as ink planes (float32 (H, W),
0..1, 1 = ink), the input of data.photo.as_photo, for benchmarks of adapting a model to one person's writing.

Templates are polylines in a box about 0.6 wide and 1 high, y downwards.

Holds PLAIN and the writers' own forms, Style, STYLES (name -> style), write (one digit of a style), samples (a
seeded set of a style's digits), photos (those as phone photos) and save_photos (the photos as PNG files in one
folder per digit, for `digitlab samples add`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.data import pen
from digitlab.data.photo import as_photo
from digitlab.errors import ConfigError

Template = Callable[[], list[np.ndarray]]  # the strokes of one digit
SEED = 20_020  # the writers' own random stream, apart from every other generator's


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 40) -> np.ndarray:
    """Points along an ellipse from `start` to `end` degrees (y downwards: 0 right, 90 bottom, -90 top)."""
    t = np.radians(np.linspace(start, end, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _line(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64)


def _join(*parts: np.ndarray) -> np.ndarray:
    return np.vstack(parts)


# The plain hand: digits as the MNIST writers (American schoolchildren and clerks) mostly wrote them.
PLAIN: dict[int, Template] = {
    0: lambda: [_arc(0.3, 0.5, 0.28, 0.5, -100, 265, 72)],
    1: lambda: [_line((0.33, 0.0), (0.3, 1.0))],
    2: lambda: [_join(_arc(0.3, 0.27, 0.27, 0.26, 195, 370), _line((0.03, 1.0), (0.62, 0.99)))],
    3: lambda: [_join(_arc(0.3, 0.25, 0.25, 0.24, 200, 450), _arc(0.3, 0.74, 0.28, 0.26, -90, 165))],
    4: lambda: [_line((0.06, 0.0), (0.03, 0.6), (0.62, 0.58)), _line((0.47, 0.05), (0.47, 1.0))],
    5: lambda: [_join(_line((0.58, 0.02), (0.1, 0.02), (0.08, 0.45)), _arc(0.3, 0.7, 0.28, 0.29, -130, 160))],
    6: lambda: [
        pen.smooth(
            _line(
                (0.5, 0.0), (0.18, 0.25), (0.03, 0.65), (0.2, 1.0), (0.5, 0.95), (0.56, 0.7), (0.32, 0.53), (0.08, 0.65)
            )
        )
    ],  # fmt: skip
    7: lambda: [_line((0.0, 0.02), (0.6, 0.02), (0.22, 1.0))],
    8: lambda: [_arc(0.3, 0.25, 0.22, 0.24, 90, 450), _arc(0.3, 0.73, 0.28, 0.27, -90, 270)],
    9: lambda: [_join(_arc(0.3, 0.28, 0.27, 0.27, 0, 370), _line((0.56, 0.35), (0.5, 1.0)))],
}

# The writers' own forms of some digits.
CONTINENTAL: dict[int, Template] = {
    1: lambda: [_line((0.0, 0.42), (0.45, 0.0), (0.42, 1.0))],  # a long upstroke flag
    7: lambda: [_line((0.02, 0.1), (0.05, 0.02), (0.6, 0.02), (0.22, 1.0)), _line((0.12, 0.52), (0.58, 0.49))],
    9: lambda: [
        _join(_arc(0.3, 0.28, 0.27, 0.27, 0, 370), pen.smooth(_line((0.56, 0.35), (0.5, 0.9), (0.3, 1.0), (0.12, 0.9))))
    ],  # fmt: skip
}
OPEN_FOUR: dict[int, Template] = {
    4: lambda: [pen.smooth(_line((0.05, 0.0), (0.02, 0.6), (0.3, 0.7), (0.6, 0.55)), 2),
                _line((0.55, 0.25), (0.55, 0.85))],  # open at the top, a short stem
    9: lambda: [_join(_arc(0.3, 0.26, 0.27, 0.26, 40, 340), _line((0.55, 0.12), (0.55, 1.0)))],  # an open loop
}  # fmt: skip
LOOPED: dict[int, Template] = {
    2: lambda: [_join(_arc(0.3, 0.27, 0.27, 0.26, 195, 370), _line((0.18, 0.72)),
                      _arc(0.22, 0.82, 0.18, 0.18, 200, -150, 40), _line((0.62, 0.98)))],  # a loop at the foot
    3: lambda: [_join(_line((0.05, 0.02), (0.58, 0.02), (0.25, 0.42)), _arc(0.3, 0.7, 0.28, 0.28, -80, 165))],
    6: lambda: [pen.smooth(_line((0.55, 0.0), (0.15, 0.4), (0.1, 0.85), (0.3, 1.0), (0.45, 0.85), (0.3, 0.72),
                                 (0.12, 0.8)), 3)],  # a small loop under a long stem
    7: lambda: [_line((0.0, 0.2), (0.05, 0.02), (0.6, 0.02)),
                pen.smooth(_line((0.6, 0.02), (0.3, 0.75), (0.32, 1.0), (0.5, 0.95)), 2)],  # a hooked stem
}  # fmt: skip
PRINTED: dict[int, Template] = {
    0: lambda: [_arc(0.3, 0.5, 0.28, 0.5, -100, 265, 72), _line((0.62, -0.05), (-0.02, 1.05))],  # slashed
    1: lambda: [_line((0.1, 0.2), (0.35, 0.0), (0.35, 1.0))],  # a short flag
    2: lambda: [_line((0.02, 0.02), (0.6, 0.02), (0.02, 1.0), (0.62, 1.0)), _line((0.12, 0.5), (0.5, 0.5))],
    3: LOOPED[3],
    7: CONTINENTAL[7],
}


@dataclass(frozen=True)
class Style:
    """A writer: their forms, and how their pen sits on the page."""

    about: str  # one line for reports
    forms: dict[int, Template] = field(default_factory=dict)  # digits written otherwise than PLAIN
    slant: float = -0.1  # x shift per unit of y, y downwards (-0.58: leaning 30 degrees to the right)
    angle: float = 0.0  # radians the whole digit is turned
    stretch: float = 1.0  # wider (> 1) or narrower (< 1) than the template
    width: float = 0.06  # the pen's width, a share of the canvas side
    jitter: float = 0.012  # the wobble, a share of the canvas side

    def template(self, digit: int) -> list[np.ndarray]:
        return (self.forms.get(digit) or PLAIN[digit])()


STYLES: dict[str, Style] = {
    "continental": Style("1 with a long upstroke flag, 7 crossed, 9 with a curled tail", CONTINENTAL, slant=-0.2),
    "printed": Style("0 slashed, 1 flagged, 2 as a crossed Z, 3 with a flat top, 7 crossed", PRINTED, slant=0.0),
    "looped": Style("2 looped at its foot, 3 flat-topped, 6 with a small loop, 7 with a hooked stem", LOOPED),
    "open-wide": Style("wide and low; 4 open at the top, 9 with an open loop", OPEN_FOUR, stretch=1.5),
    "slanted": Style("a strong rightward slant (40 degrees), narrow", slant=-0.84, stretch=0.65, angle=-0.05),
    "marker": Style("a heavy felt marker", width=0.2, jitter=0.008),
}


def _style(name: str) -> Style:
    if name not in STYLES:
        raise ConfigError(f"no writer style {name!r}: choose one of {', '.join(STYLES)}")
    return STYLES[name]


def write(style: str, digit: int, rng: np.random.Generator) -> np.ndarray:
    """`digit` as the writer `style` writes it, once: a float32 ink plane (H, W) in 0..1. The quirks are the
    style's; position, size, wobble and a little slant, turn and pressure are drawn from `rng`."""
    hand = _style(style)
    if digit not in PLAIN:
        raise ConfigError(f"a writer writes the digits 0-9, not {digit!r}")
    strokes = [s + rng.normal(0, 0.01, s.shape) for s in hand.template(int(digit))]  # never quite the same
    return pen.draw(
        strokes,
        rng,
        jitter=hand.jitter,
        angle=hand.angle + rng.normal(0, 0.04),
        slant=hand.slant + rng.normal(0, 0.04),
        stretch=hand.stretch * np.exp(rng.normal(0, 0.04)),
        width=hand.width * np.exp(rng.normal(0, 0.1)),
    )


def samples(style: str, per_digit: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """`per_digit` of each digit 0-9 written by `style` (0, 1, ..., 9, 0, 1, ...), the same for the same seed:
    the ink planes and their labels (int64)."""
    _style(style)
    rng = np.random.default_rng((SEED, list(STYLES).index(style), seed))
    labels = np.tile(np.arange(10), per_digit)
    return [write(style, int(digit), rng) for digit in labels], labels


def photos(style: str, per_digit: int, seed: int) -> tuple[list[Image.Image], np.ndarray]:
    """samples() photographed (data.photo.as_photo, its own seeded stream): RGB pictures as a phone gives them,
    and their labels."""
    inks, labels = samples(style, per_digit, seed)
    rng = np.random.default_rng((SEED, list(STYLES).index(style), seed, 1))
    return [as_photo(ink, rng) for ink in inks], labels


def save_photos(style: str, per_digit: int, seed: int, folder: str | Path) -> list[tuple[Path, int]]:
    """photos() saved as FOLDER/<digit>/<style>-<n>.png, one folder per digit as `digitlab samples add DIR <digit>
    FOLDER/<digit>` takes them: the paths and their labels."""
    pictures, labels = photos(style, per_digit, seed)
    saved = []
    for number, (picture, label) in enumerate(zip(pictures, labels)):
        path = Path(folder) / str(label) / f"{style}-{number:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        saved.append((path, int(label)))
    return saved
