"""Drawing non-digits with a pen: the shapes and scribbles of nondigits.py, and the pen that draws any strokes.

A stroke is a polyline, an (n, 2) array of (x, y) points with y downwards, in any units; draw() lays strokes on a
canvas as a person's pen would: slanted, rotated and stretched a little, each line wobbling, with a random pen
width, and returns an ink plane (float32 (H, W), 0..1, 1 = full ink), as digitlab.data.photo.as_photo takes.

Holds draw (the pen), smooth (Chaikin's corner cutting), the shapes (SHAPES: name -> a function of a random
generator giving strokes and which are filled; LOOK_ALIKE_SHAPES, drawn only for a benchmark that asks) and the
scribbles (SCRIBBLES: name -> the same).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Strokes = tuple[list[np.ndarray], list[bool]]  # the polylines, and for each whether its inside is filled
Maker = Callable[[np.random.Generator], Strokes]


def draw(
    strokes: list[np.ndarray],
    rng: np.random.Generator,
    filled: list[bool] | None = None,
    jitter: float = 0.015,
    *,
    angle: float | None = None,
    slant: float | None = None,
    stretch: float | None = None,
    width: float | None = None,
) -> np.ndarray:
    """`strokes` drawn by a wobbly pen on a canvas of 64-160 px: a float32 ink plane (H, W) in 0..1. The turn
    (`angle`, radians), `slant` (x shift per unit of y, y downwards: below 0 leans right), `stretch` (width over
    height factor) and pen `width` (a share of the canvas side) are drawn at random unless given: a caller with a
    consistent hand fixes them."""
    filled = filled or [False] * len(strokes)
    # drawn in the same order as always when not given, so that existing seeds draw what they drew before
    angle = rng.uniform(-0.25, 0.25) if angle is None else angle
    slant = rng.uniform(-0.3, 0.3) if slant is None else slant
    stretch = np.exp(rng.uniform(-0.2, 0.2)) if stretch is None else stretch
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.array(
        [[stretch, slant], [0.0, 1 / stretch]]
    )
    strokes = [np.atleast_2d(np.asarray(s, dtype=np.float64)) @ matrix.T for s in strokes]
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float(max(high - low)) or 1.0
    side = int(rng.integers(64, 161))
    margin = side * rng.uniform(0.12, 0.25)
    scale = (side - 2 * margin) / extent
    width = max(2, int(round(side * (rng.uniform(0.03, 0.09) if width is None else width))))
    canvas = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(canvas)
    for stroke, fill in zip(strokes, filled):
        xy = (stroke - low) * scale + margin + (side - 2 * margin - (high - low) * scale) / 2
        xy = _wobble(_dense(xy, side / 60), rng, jitter * side)
        if len(xy) == 1 or np.ptp(xy, axis=0).max() < 1:  # a dot
            (x, y), r = xy[0], width * rng.uniform(0.5, 1.0)
            pen.ellipse([x - r, y - r, x + r, y + r], fill=255)
            continue
        flat = [tuple(p) for p in xy]
        if fill:
            pen.polygon(flat, fill=255)
        pen.line(flat, fill=255, width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):  # round pen ends
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _dense(xy: np.ndarray, step: float) -> np.ndarray:
    """The polyline resampled every `step` units, so that the wobble bends lines, not just moves corners."""
    if len(xy) < 2:
        return xy
    lengths = np.r_[0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]
    if lengths[-1] == 0:
        return xy[:1]
    along = np.linspace(0, lengths[-1], max(2, int(lengths[-1] / step) + 1))
    return np.stack([np.interp(along, lengths, xy[:, 0]), np.interp(along, lengths, xy[:, 1])], axis=1)


def _wobble(xy: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A hand's slow tremor: a smoothed random walk added along the line."""
    if len(xy) < 3 or amplitude <= 0:
        return xy
    walk = np.cumsum(rng.normal(0, 1, size=xy.shape), axis=0)
    walk = ndimage.uniform_filter1d(walk, 9, axis=0, mode="nearest")
    walk -= np.linspace(walk[0], walk[-1], len(walk))  # ends stay put: closed shapes stay closed
    peak = np.abs(walk).max() or 1.0
    return xy + walk * (amplitude / peak)


def smooth(points: np.ndarray, rounds: int = 3, closed: bool = False) -> np.ndarray:
    """Chaikin's corner cutting: a curve through (near) the points, as a hand draws through them."""
    points = np.asarray(points, dtype=np.float64)
    for _ in range(rounds):
        ring = np.vstack([points, points[:1]]) if closed else points
        a, b = ring[:-1], ring[1:]
        cut = np.empty((2 * len(a), 2))
        cut[0::2], cut[1::2] = 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b
        points = cut if closed else np.vstack([points[:1], cut, points[-1:]])
    return np.vstack([points, points[:1]]) if closed else points


def _circle(n: int = 48, radius=1.0, centre=(0.0, 0.0), start=0.0, end=2 * np.pi) -> np.ndarray:
    t = np.linspace(start, end, n)
    r = radius(t) if callable(radius) else radius
    return np.stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)], axis=1)


def _polygon(sides: int, rng) -> np.ndarray:
    t = rng.uniform(0, 2 * np.pi) + np.arange(sides + 1) * 2 * np.pi / sides
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(rng) -> Strokes:
    points = int(rng.integers(5, 9))
    t = -np.pi / 2 + np.arange(2 * points + 1) * np.pi / points
    r = np.where(np.arange(2 * points + 1) % 2 == 0, 1.0, rng.uniform(0.35, 0.6))
    return [np.stack([r * np.cos(t), r * np.sin(t)], axis=1)], [rng.random() < 0.3]


def _heart(rng) -> Strokes:
    t = np.linspace(0, 2 * np.pi, 80)
    x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [np.stack([x, y], axis=1)], [rng.random() < 0.3]


def _smiley(rng) -> Strokes:
    mood = rng.uniform(0.15, 0.35) * rng.choice([1, -1])  # a smile or a frown
    mouth = _circle(20, 0.5, (0, 0.25 - mood), np.pi * (0.2 if mood > 0 else 1.2), np.pi * (0.8 if mood > 0 else 1.8))
    eyes = [np.array([[x, -0.35]]) if rng.random() < 0.6 else np.array([[x, -0.45], [x, -0.25]]) for x in (-0.35, 0.35)]
    return [_circle(), *eyes, mouth], [False] * 4


def _polygon_shape(sides: int) -> Maker:
    return lambda rng: ([_polygon(sides, rng)], [rng.random() < 0.3])


def _arrow(rng) -> Strokes:
    head = rng.uniform(0.25, 0.45)
    shaft = np.array([[-1.0, 0.0], [1.0, 0.0]])
    tip = np.array([[1 - head, -head], [1.0, 0.0], [1 - head, head]])
    turn = rng.uniform(0, 2 * np.pi)
    rotate = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return [shaft @ rotate.T, tip @ rotate.T], [False, False]


def _cross(rng) -> Strokes:
    turn = rng.choice([0, np.pi / 4]) + rng.uniform(-0.2, 0.2)
    arms = [np.array([[-np.cos(a), -np.sin(a)], [np.cos(a), np.sin(a)]]) for a in (turn, turn + np.pi / 2)]
    return arms, [False, False]


def _spiral(rng) -> Strokes:
    turns = rng.uniform(2.0, 4.0)
    t = np.linspace(0, 2 * np.pi * turns, int(60 * turns))
    return [np.stack([t * np.cos(t), t * np.sin(t) * rng.choice([1, -1])], axis=1)], [False]


def _cloud(rng) -> Strokes:
    bumps = int(rng.integers(4, 9))
    return [_circle(120, lambda t: 1 + 0.2 * np.abs(np.sin(bumps * t / 2)))], [False]


def _crescent(rng) -> Strokes:
    outer = _circle(40, 1.0, (0.0, 0.0), np.pi / 2, 3 * np.pi / 2)  # the left half, bottom to top
    inner = _circle(30, 1.45, (1.05, 0.0), 3.902, 2.381)  # back down through (-0.4, 0): the circle meeting (0, +-1)
    return [np.vstack([outer, inner])], [rng.random() < 0.5]


def _lightning(rng) -> Strokes:
    return [np.array([[0.3, -1], [-0.3, 0.05], [0.25, -0.05], [-0.3, 1]]) + rng.normal(0, 0.05, (4, 2))], [False]


def _house(rng) -> Strokes:
    body = np.array([[-1, 0], [-1, 1], [1, 1], [1, 0], [-1, 0]], dtype=float)
    return [body, np.array([[-1.2, 0.0], [0.0, -rng.uniform(0.8, 1.2)], [1.2, 0.0]])], [False, False]


def _flower(rng) -> Strokes:
    petals = int(rng.integers(3, 7))
    return [_circle(160, lambda t: 0.3 + np.abs(np.cos(petals * t / 2)))], [False]


def _sun(rng) -> Strokes:
    rays = int(rng.integers(6, 12))
    spokes = [
        np.array([[0.6 * np.cos(a), 0.6 * np.sin(a)], [np.cos(a), np.sin(a)]])
        for a in np.arange(rays) * 2 * np.pi / rays
    ]
    return [_circle(30, 0.4), *spokes], [rng.random() < 0.4] + [False] * rays


def _wave(rng) -> Strokes:
    x = np.linspace(-1, 1, 80)
    return [np.stack([x, 0.25 * np.sin(x * np.pi * rng.uniform(1.5, 3.5))], axis=1)], [False]


def _grid(rng) -> Strokes:
    lines = [np.array([[-1, y], [1, y]]) for y in (-0.35, 0.35)] + [np.array([[x, -1], [x, 1]]) for x in (-0.35, 0.35)]
    return lines, [False] * 4


def _ellipse(rng) -> Strokes:  # a look-alike: a 0
    return [_circle(48, 1.0) * [rng.uniform(0.5, 1.0), 1.0]], [False]


def _line(rng) -> Strokes:  # a look-alike: a 1 (or a 1 lying down)
    return [np.array([[0.0, -1.0], [rng.uniform(-0.5, 0.5), 1.0]])], [False]


SHAPES: dict[str, Maker] = {
    "star": _star, "heart": _heart, "smiley": _smiley, "triangle": _polygon_shape(3), "square": _polygon_shape(4),
    "pentagon": _polygon_shape(5), "hexagon": _polygon_shape(6), "arrow": _arrow, "cross": _cross, "spiral": _spiral,
    "cloud": _cloud, "crescent": _crescent, "lightning": _lightning, "house": _house, "flower": _flower, "sun": _sun,
    "wave": _wave, "grid": _grid,
}  # fmt: skip
LOOK_ALIKE_SHAPES: dict[str, Maker] = {"ellipse": _ellipse, "line": _line}


def _scrawl(rng) -> Strokes:
    return [smooth(rng.uniform(-1, 1, (int(rng.integers(6, 13)), 2)))], [False]


def _tangle(rng) -> Strokes:
    t = np.linspace(0, 2 * np.pi * rng.uniform(3, 6), 400)
    xy = sum(rng.uniform(0.2, 1) * np.stack([np.cos(f * t + p), np.sin(g * t + q)], axis=1)
             for f, g, p, q in rng.uniform([0.3, 0.3, 0, 0], [2.5, 2.5, 6.3, 6.3], (3, 4)))  # fmt: skip
    return [xy], [False]


def _hatching(rng) -> Strokes:
    count = int(rng.integers(4, 11))
    lines = [np.array([[-1, y], [1, y + rng.uniform(-0.1, 0.1)]]) for y in np.linspace(-1, 1, count)]
    if rng.random() < 0.5:  # cross-hatched
        lines += [np.array([[x, -1], [x + rng.uniform(-0.1, 0.1), 1]]) for x in np.linspace(-1, 1, count)]
    turn = rng.uniform(0, np.pi)
    rotate = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return [line @ rotate.T for line in lines], [False] * len(lines)


def _zigzag(rng) -> Strokes:
    count = int(rng.integers(6, 16))
    x = np.linspace(-1, 1, count) + rng.normal(0, 0.05, count)
    y = np.where(np.arange(count) % 2 == 0, -1.0, 1.0) * rng.uniform(0.3, 1.0, count)
    return [np.stack([x, y], axis=1) if rng.random() < 0.5 else np.stack([y, x], axis=1)], [False]


def _strokes(rng) -> Strokes:
    count = int(rng.integers(2, 6))
    return [smooth(rng.uniform(-1, 1, (int(rng.integers(2, 5)), 2)), 2) for _ in range(count)], [False] * count


def _dots(rng) -> Strokes:
    count = int(rng.integers(3, 10))
    return [rng.uniform(-1, 1, (1, 2)) for _ in range(count)], [False] * count


SCRIBBLES: dict[str, Maker] = {
    "scrawl": _scrawl, "tangle": _tangle, "hatching": _hatching, "zigzag": _zigzag, "strokes": _strokes, "dots": _dots,
}  # fmt: skip
