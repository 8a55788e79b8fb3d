"""The picture files benchmarks/predict_files.py times `digitlab predict` on: two classes, made from MNIST test
digits with fixed seeds, so that every run (and the code before and after a change) reads the same files.

- scans: scans and drawings up to 1 megapixel. Canvases of 60 to 1000 px a side (log-uniform, so small and
  large ones both count), a digit scaled up to 40-80% of the height: drawings as PNG (light on dark as the
  page draws them, or dark on light), scans as JPEG (grey paper, a little noise, quality 80-95), phone photos
  of paper (digitlab.data.photo.as_photo: light, grain, pen colour, blur, noise) as JPEG; one in ten holds
  two digits side by side (a line: predict's "several digits" verdict).
- phone: 12-megapixel phone photos, 4000x3000 JPEGs at quality 90 of one digit 600-1800 px tall written on
  paper (as_photo's effects, drawn on a quarter-size sheet and enlarged, then the sensor's noise at full
  size); one in four stored turned on its side with an EXIF orientation tag, as phones save them.

Holds CLASSES, write_class (one class's files into a folder) and the private renderers.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.data.photo import as_photo, draw_style

CLASSES = ("scans", "phone")
PHONE_SIZE = (4000, 3000)  # width, height: a 12 MP phone camera
EXIF_ORIENTATION = 0x0112
NOISE = 6  # the sensor's noise, grey levels: what makes a 12 MP JPEG at quality 90 some 2.5 MB, as phones write
ROTATED = 6  # EXIF: the stored pixels are turned 90 degrees anticlockwise; a viewer turns them back


def _scaled(digit: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit (uint8 28x28) as an ink plane (float 0..1) `height` pixels tall, smoothly enlarged."""
    plane = Image.fromarray(digit.astype(np.float32) / 255, mode="F")
    return np.clip(np.asarray(plane.resize((height, height), Image.Resampling.BILINEAR)), 0, 1)


def _canvas(
    digits: list[np.ndarray], width: int, height: int, rng: np.random.Generator, share=(0.4, 0.8)
) -> np.ndarray:
    """An ink plane `width` x `height` with `digits` (MNIST uint8) side by side, a `share` of its height tall."""
    ink = np.zeros((height, width), dtype=np.float32)
    tall = max(12, round(height * rng.uniform(*share)))
    tall = min(tall, (width - 4) // len(digits))
    planes = [_scaled(digit, tall) for digit in digits]
    top = int(rng.integers(0, height - tall + 1))
    x = int(rng.integers(0, width - tall * len(digits) + 1))
    for plane in planes:
        ink[top : top + tall, x : x + tall] = np.maximum(ink[top : top + tall, x : x + tall], plane)
        x += tall - round(0.15 * tall)  # MNIST digits have wide margins: close them up a little
    return ink


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _scan(number: int, digits: list[np.ndarray], rng: np.random.Generator) -> tuple[str, bytes]:
    """One picture of up to 1 MP: (file name, bytes)."""
    side = int(round(np.exp(rng.uniform(np.log(60), np.log(1000)))))
    width, height = side, max(40, round(side * rng.uniform(0.7, 1.0)))
    ink = _canvas(digits, width, height, rng)
    kind = number % 4
    if kind == 0:  # drawn on the page: white on black, PNG
        return f"{number:05d}-drawing.png", _encode(Image.fromarray(np.round(ink * 255).astype(np.uint8)), "PNG")
    if kind == 1:  # drawn dark on white, PNG
        return f"{number:05d}-ink.png", _encode(Image.fromarray(np.round(255 - ink * 255).astype(np.uint8)), "PNG")
    if kind == 2:  # a scan: grey paper, dark ink, a little noise, JPEG
        paper = rng.uniform(0.8, 0.95)
        pixels = paper - ink * rng.uniform(0.5, 0.75) + rng.normal(0, 0.01, ink.shape)
        grey = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
        return f"{number:05d}-scan.jpg", _encode(grey, "JPEG", quality=int(rng.integers(80, 96)))
    photo = as_photo(ink, rng)  # a phone photo of paper, cropped to the digit
    return f"{number:05d}-photo.jpg", _encode(photo, "JPEG", quality=int(rng.integers(75, 95)))


def _phone(number: int, digit: np.ndarray, rng: np.random.Generator) -> tuple[str, bytes]:
    """One 12 MP phone photo of a digit on paper, JPEG quality 90: (file name, bytes)."""
    width, height = PHONE_SIZE
    small = _canvas([digit], width // 4, height // 4, rng, share=(0.2, 0.6))  # 600-1800 px tall at full size
    style = draw_style(rng)
    photo = as_photo(small, rng, style).resize(PHONE_SIZE, Image.Resampling.BICUBIC)
    noise = rng.normal(0, NOISE, size=(height, width, 3)).round().astype(np.int16)
    image = Image.fromarray(np.clip(np.asarray(photo, dtype=np.int16) + noise, 0, 255).astype(np.uint8), mode="RGB")
    if number % 4 == 3:  # stored on its side, as a phone held upright saves it, with the tag to turn it back
        image = image.transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = ROTATED
        return f"{number:05d}-phone-rotated.jpg", _encode(image, "JPEG", quality=90, exif=exif.tobytes())
    return f"{number:05d}-phone.jpg", _encode(image, "JPEG", quality=90)


def write_class(name: str, folder: Path, images: np.ndarray, count: int, seed: int = 0) -> list[Path]:
    """`count` files of class `name` (CLASSES) written into `folder` from MNIST test `images` (uint8 N x 28 x
    28), the same files for the same seed; their paths, sorted as predict reads a folder."""
    if name not in CLASSES:
        raise ValueError(f"unknown picture class {name!r}; one of {', '.join(CLASSES)}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, CLASSES.index(name)])
    paths = []
    for number in range(count):
        first = images[number % len(images)]
        if name == "phone":
            file, data = _phone(number, first, rng)
        else:
            line = number % 10 == 9
            digits = [first, images[(number + 1) % len(images)]] if line else [first]
            file, data = _scan(number, digits, rng)
        path = folder / file
        path.write_bytes(data)
        paths.append(path)
    return sorted(paths)
