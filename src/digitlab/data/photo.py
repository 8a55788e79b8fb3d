"""Ink on a page rendered as a phone photo of it: what a person sends, for benchmarks and generated training data.

A benchmark that feeds the model clean MNIST-like arrays measures nothing a user meets. as_photo() takes an ink
plane (float (H, W) in 0..1, 1 where the pen left full ink, as digits, numbers and non-digits are drawn here) and
lays it on paper as a camera sees it: a tinted sheet lit unevenly, with a grain; a pen of some colour and
strength; a little out of focus; sensor noise; saved as a JPEG of middling quality. Every effect is drawn from
`rng`, so a seed makes the same photo again.

Holds PhotoStyle (the drawn effects, for a caller that wants to see or fix them), draw_style and as_photo.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

# Pens seen on forms and notes, as RGB in 0..1: black ballpoint, blue ballpoint, pencil, dark felt-tip.
PENS = np.array([[0.08, 0.08, 0.10], [0.10, 0.15, 0.45], [0.35, 0.35, 0.37], [0.15, 0.12, 0.12]], dtype=np.float32)


@dataclass(frozen=True)
class PhotoStyle:
    paper: tuple[float, float, float]  # the sheet's colour under even light, RGB 0..1
    light_angle: float  # radians: the direction the light falls off towards
    light_drop: float  # how much darker the far side of the sheet is (0..1 of the paper's level)
    grain: float  # amplitude of the paper's low-frequency texture
    pen: tuple[float, float, float]  # the ink's colour, RGB 0..1
    opacity: float  # how fully the pen covers the paper at full ink
    blur: float  # Gaussian focus blur, pixels
    noise: float  # sensor noise, standard deviation in 0..1
    quality: int  # JPEG quality it is saved at


def draw_style(rng: np.random.Generator) -> PhotoStyle:
    """A random but plausible photo of paper: never so dark, faint or blurred that a person could not read it."""
    level = rng.uniform(0.72, 0.97)
    tint = rng.uniform(-0.04, 0.04, size=3)
    return PhotoStyle(
        paper=tuple(float(c) for c in np.clip(level + tint, 0, 1)),
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_drop=float(rng.uniform(0.0, 0.25)),
        grain=float(rng.uniform(0.0, 0.03)),
        pen=tuple(float(c) for c in PENS[rng.integers(len(PENS))]),
        opacity=float(rng.uniform(0.75, 1.0)),
        blur=float(rng.uniform(0.0, 1.0)),
        noise=float(rng.uniform(0.003, 0.025)),
        quality=int(rng.integers(55, 96)),
    )


def as_photo(ink: np.ndarray, rng: np.random.Generator, style: PhotoStyle | None = None) -> Image.Image:
    """The ink plane `ink` (float (H, W), 0..1) as an RGB JPEG-decoded photo of paper, its effects drawn from
    `rng` (or given as `style`)."""
    ink = np.clip(np.asarray(ink, dtype=np.float32), 0, 1)
    if ink.ndim != 2:
        raise ValueError(f"an ink plane is (H, W), got shape {ink.shape}")
    style = style or draw_style(rng)
    height, width = ink.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    # light falls off linearly across the sheet in one direction: a phone held over a desk lamp
    along = np.cos(style.light_angle) * cols / max(width, 1) + np.sin(style.light_angle) * rows / max(height, 1)
    span = float(along.max() - along.min()) or 1.0
    light = 1.0 - style.light_drop * (along - along.min()) / span
    grain = ndimage.gaussian_filter(rng.standard_normal((height, width)).astype(np.float32), 3.0)
    grain *= style.grain / max(float(grain.std()), 1e-6)
    paper = np.asarray(style.paper, dtype=np.float32)[None, None, :] * (light + grain)[:, :, None]
    cover = (ink * style.opacity)[:, :, None]
    pixels = paper * (1 - cover) + np.asarray(style.pen, dtype=np.float32)[None, None, :] * light[:, :, None] * cover
    if style.blur > 0.05:
        pixels = ndimage.gaussian_filter(pixels, sigma=(style.blur, style.blur, 0))
    pixels = pixels + rng.normal(0.0, style.noise, size=pixels.shape).astype(np.float32)
    image = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=style.quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")
