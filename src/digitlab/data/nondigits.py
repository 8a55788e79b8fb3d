"""Non-digits: what people send a digit reader that is not a digit, as ink planes, for training and benchmarks.

A model trained on digits alone answers a digit for anything. To teach it "not a digit" (outlier exposure) and
to measure how well it refuses, this module draws non-digits in four families, each an ink plane (float32
(H, W), 0..1, ink = 1) that digitlab.data.photo.as_photo turns into a picture as a user would send one:

letters    letters and symbols in Hershey's vector fonts (drawn by data.pen with a random pen, slant and wobble)
           and in the TrueType fonts on the machine (DejaVu, Liberation), at a random size, weight and slant
shapes     star, heart, smiley, polygons, arrow, cross, spiral, cloud, ... (data.pen.SHAPES)
scribbles  scrawls, tangles, hatching, zigzags, loose strokes, dots (data.pen.SCRIBBLES)
fashion    Fashion-MNIST's clothes (Debian's dataset-fashion-mnist), upscaled

Every family has three disjoint splits: "train" (what a model learns from), "validation" (what settings are
chosen on) and "benchmark" (looked at only for the final report): other fonts in each, other seeds everywhere,
and for Fashion-MNIST its training file cut in two for train and validation, its test file for the benchmark.
What could honestly be read as a digit (an O, an l, an S, a circle, a single stroke) is a look-alike
(LOOK_ALIKES): never trained on, drawn for a benchmark only when it asks.

Holds FAMILIES, SPLITS, LOOK_ALIKES, the fonts of each split (HERSHEY_FONTS, TRUETYPE_FOLDERS), NonDigit (one
drawn non-digit: its ink, family and kind) and generate (count of a family's split, seeded).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitlab.data import pen
from digitlab.data.idx import parse, read_bytes
from digitlab.errors import DataError

FAMILIES = ("letters", "shapes", "scribbles", "fashion")
SPLITS = ("train", "validation", "benchmark")
SPLIT_SEEDS = {"train": 1_101, "validation": 2_202, "benchmark": 3_303}  # every split draws from its own stream

# What a person could read as a digit: 0 (O o D Q, a circle), 1 (I l i |, a single stroke, brackets), 2 (Z z),
# 5 (S s $), 6 (b G), 8 (B), 9 (g q), and marks too small to be anything (. , ' `). Never trained on as "not a
# digit": a model taught to refuse them would refuse real digits drawn that way.
LOOK_ALIKE_CHARACTERS = "OoDQIliSsZzBbGgq|/\\-_()[].,'`:;$"
LOOK_ALIKES = frozenset(LOOK_ALIKE_CHARACTERS) | frozenset(pen.LOOK_ALIKE_SHAPES)
CHARACTERS = "".join(
    c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#%&*+<=>?@!{}~^" if c not in LOOK_ALIKES
)

# Hershey's Latin fonts, each in one split only: a model is validated and benchmarked on letter forms it never saw.
HERSHEY_FONTS = {
    "train": ("futural", "rowmans", "cursive", "timesr", "gothiceng"),
    "validation": ("futuram", "rowmand", "scripts", "timesi", "gothicger"),
    "benchmark": ("rowmant", "scriptc", "timesrb", "timesib", "gothicita", "gothgbt", "gothgrt", "gothitt"),
}
TRUETYPE_FOLDERS = {
    "train": ("/usr/share/fonts/truetype/dejavu",),
    "validation": (),
    "benchmark": ("/usr/share/fonts/truetype/liberation",),
}
FASHION_DIR = Path(os.environ.get("DIGITLAB_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
FASHION_VALIDATION = 10_000  # of Fashion-MNIST's 60,000 training images, held out (seeded) for validation


@dataclass(frozen=True)
class NonDigit:
    ink: np.ndarray  # float32 (H, W), 0..1, ink = 1
    family: str  # one of FAMILIES
    kind: str  # the character, shape, scribble or clothing drawn
    source: str  # the font, or "pen", or Fashion-MNIST's file and index

    @property
    def look_alike(self) -> bool:
        return self.kind in LOOK_ALIKES


def generate(family: str, split: str, count: int, seed: int = 0, look_alikes: bool = False) -> list[NonDigit]:
    """`count` non-digits of `family` from `split`, the same for the same seed; with `look_alikes` (not for
    "train") the digit look-alikes are drawn too, as often as the others."""
    if family not in FAMILIES or split not in SPLITS:
        raise ValueError(f"no {family!r} non-digits in split {split!r}: families {FAMILIES}, splits {SPLITS}")
    if look_alikes and split == "train":
        raise ValueError("look-alikes are never trained on: ask for them from the validation or benchmark split")
    rng = np.random.default_rng((SPLIT_SEEDS[split], FAMILIES.index(family), seed))
    if family == "fashion":
        return _fashion(split, count, rng)
    draw = {"letters": _letter, "shapes": _shape, "scribbles": _scribble}[family]
    return [draw(split, rng, look_alikes) for _ in range(count)]


def _letter(split: str, rng: np.random.Generator, look_alikes: bool) -> NonDigit:
    alphabet = CHARACTERS + (LOOK_ALIKE_CHARACTERS if look_alikes else "")
    character = alphabet[rng.integers(len(alphabet))]
    fonts = truetype_fonts(split)
    if fonts and rng.random() < 0.5:
        font = fonts[rng.integers(len(fonts))]
        return NonDigit(_truetype(character, font, rng), "letters", character, font.name)
    name = HERSHEY_FONTS[split][rng.integers(len(HERSHEY_FONTS[split]))]
    strokes = [np.array(s, dtype=np.float64) * [1, -1] for s in _hershey(name).strokes_for_text(character)]
    return NonDigit(pen.draw(strokes, rng, jitter=0.01), "letters", character, f"hershey:{name}")


def _shape(split: str, rng: np.random.Generator, look_alikes: bool) -> NonDigit:
    makers = pen.SHAPES | (pen.LOOK_ALIKE_SHAPES if look_alikes else {})
    name = list(makers)[rng.integers(len(makers))]
    strokes, filled = makers[name](rng)
    return NonDigit(pen.draw(strokes, rng, filled), "shapes", name, "pen")


def _scribble(split: str, rng: np.random.Generator, look_alikes: bool) -> NonDigit:
    name = list(pen.SCRIBBLES)[rng.integers(len(pen.SCRIBBLES))]
    strokes, filled = pen.SCRIBBLES[name](rng)
    return NonDigit(pen.draw(strokes, rng, filled, jitter=0.02), "scribbles", name, "pen")


@functools.cache
def _hershey(name: str):
    try:
        from HersheyFonts import HersheyFonts
    except ImportError:
        raise DataError("drawing letters needs the Hershey-Fonts package: pip install 'Hershey-Fonts>=2.1'") from None
    font = HersheyFonts()
    font.load_default_font(name)
    font.normalize_rendering(100)
    return font


@functools.cache
def truetype_fonts(split: str) -> tuple[Path, ...]:
    """The .ttf files of the split's folders that draw Latin letters (a folder missing here gives none)."""
    found = sorted(p for folder in TRUETYPE_FOLDERS[split] for p in Path(folder).glob("*.ttf"))
    return tuple(p for p in found if "Math" not in p.name)  # DejaVuMathTeXGyre: the maths, not the letters


def _truetype(character: str, path: Path, rng: np.random.Generator) -> np.ndarray:
    """The character in a TrueType font, at a random size and weight, slanted and turned a little."""
    size = int(rng.integers(40, 111))
    font = ImageFont.truetype(str(path), size)
    side = 2 * size
    canvas = Image.new("L", (side, side), 0)
    weight = int(rng.integers(0, max(1, size // 25) + 1))  # outline added around the glyph: bolder strokes
    ImageDraw.Draw(canvas).text((side / 2, side / 2), character, fill=255, font=font, anchor="mm", stroke_width=weight,
                                stroke_fill=255)  # fmt: skip
    slant, angle = rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2)
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ [[1, slant], [0, 1]]
    inverse = np.linalg.inv(matrix)
    centre = np.array([side / 2, side / 2])
    offset = centre - inverse @ centre
    coefficients = (*inverse[0], offset[0], *inverse[1], offset[1])
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
    return np.asarray(canvas, dtype=np.float32) / 255.0


@functools.cache
def _fashion_file(which: str) -> np.ndarray:
    stem = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}[which]
    for path in (FASHION_DIR / f"{stem}.gz", FASHION_DIR / stem):
        if path.is_file():
            return parse(read_bytes(path), ndim=3, source=str(path))
    raise DataError(
        f"Fashion-MNIST is not in {FASHION_DIR}: install Debian's dataset-fashion-mnist, or set "
        f"DIGITLAB_FASHION_DIR to a folder holding its IDX files"
    )


@functools.cache
def _fashion_labels(which: str) -> np.ndarray:
    stem = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}[which]
    path = next((p for p in (FASHION_DIR / f"{stem}.gz", FASHION_DIR / stem) if p.is_file()), None)
    return parse(read_bytes(path), ndim=1, source=str(path)) if path else np.full(len(_fashion_file(which)), -1)


def fashion_indices(split: str) -> tuple[str, np.ndarray]:
    """The Fashion-MNIST file a split reads ("train" or "test") and the indices of its images in it."""
    if split == "benchmark":
        return "test", np.arange(len(_fashion_file("test")))
    order = np.random.default_rng(SPLIT_SEEDS["validation"]).permutation(len(_fashion_file("train")))
    part = order[:FASHION_VALIDATION] if split == "validation" else order[FASHION_VALIDATION:]
    return "train", np.sort(part)


def _fashion(split: str, count: int, rng: np.random.Generator) -> list[NonDigit]:
    which, indices = fashion_indices(split)
    images, labels = _fashion_file(which), _fashion_labels(which)
    chosen = rng.choice(indices, size=count, replace=count > len(indices))
    drawn = []
    for index in chosen:
        scale = int(rng.integers(2, 6))  # 56-140 px: a photo is larger than 28x28
        big = Image.fromarray(images[index]).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
        ink = np.pad(np.asarray(big, dtype=np.float32) / 255.0, int(rng.integers(2, 4 * scale + 3)))
        label = int(labels[index])
        kind = FASHION_CLASSES[label] if 0 <= label < len(FASHION_CLASSES) else "clothing"
        drawn.append(NonDigit(ink, "fashion", kind, f"fashion-mnist:{which}:{index}"))
    return drawn
