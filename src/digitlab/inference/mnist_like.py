"""A decoded picture of a digit brought to the form of an MNIST digit, as MNIST itself was made.

LeCun's MNIST took NIST's scanned digits, scaled each to fit a 20x20 box keeping its aspect ratio (anti-
aliased, so the edges became grey), and placed it in a 28x28 field so that its centre of mass lands at the
centre: a light digit on black, its strokes some 2-3 pixels wide. A model trained on MNIST has only seen
that, so a photo, a scan or a drawing is put into the same form before it is classified: the ink is found
(dark on light paper or light on dark, or the opaque part of a transparent picture), the paper's level and
its noise are taken away, the strokes are stretched to full brightness, cropped, brought to MNIST's stroke
width, scaled into 20x20 and centred by mass.

Holds MNIST's geometry (MNIST_SIDE, IMAGE_SHAPE, BOX_SIDE, CENTRE) and the ink and stroke thresholds, the whole
step (to_mnist), finding the ink (ink_plane: raw_ink, then kept_ink drops the specks and scaled_ink stretches the rest),
one digit's ink made MNIST-like (ink_to_mnist, also used for each digit of a line by inference.read) and
measuring strokes (stroke_width); the private helpers crop, resize, mend the strokes and place the digit. The
marks are labelled and their soft edges (EDGE) grown within the ink's box (_window), not over the whole picture.
to_mnist() refuses a page with no ink (decode.ImageError).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.inference.decode import ImageError

MNIST_SIDE = 28  # the field an MNIST digit lies in
IMAGE_SHAPE = (MNIST_SIDE, MNIST_SIDE)  # (height, width) of what to_mnist makes: what a model must take
BOX_SIDE = 20  # the box the digit is scaled to fit, keeping its aspect ratio
CENTRE = 14.0  # where MNIST's centres of mass lie (row and column index; measured: 13.99, 14.00 on the test set)
LARGEST_SIDE = 2048  # larger pictures are first reduced (area average): no digit needs more
WORK_SCALE = 8  # strokes are measured and mended with the digit at 8x its final size (160 px for the 20-px box)
# MNIST's stroke width in final pixels: its digits, upscaled 8x and cut at half brightness, give a median of
# 2.5 px (2 * area / outline length); strokes thinner or thicker than WIDTH_RANGE are brought to STROKE_WIDTH.
STROKE_WIDTH = 2.5
WIDTH_RANGE = (1.8, 3.6)
MIN_CONTRAST = 0.1  # of the full range: a fainter difference from the paper is no ink
NOISE_SIGMAS = 4  # ink must stand out from the paper by this many standard deviations of its noise
SPECK_SHARE = 0.02  # marks with less than this share of the ink (dust, a paper fibre) are dropped
EDGE = 2  # pixels of soft edge kept around the strokes (grey pixels below the ink's threshold)
BORDER_SHARE = 0.05  # the frame whose median is the paper's level: 5% of each side, at least one pixel


def to_mnist(image: Image.Image, name: str) -> np.ndarray:
    """The digit in `image` as MNIST shows one: uint8 (28, 28), a light digit on black, scaled to fit 20x20
    and centred by mass. ImageError, naming `name`, if no ink stands out from the paper."""
    return ink_to_mnist(ink_plane(image, name))


def ink_to_mnist(ink: np.ndarray) -> np.ndarray:
    """One digit's ink (float (H, W) in 0..1 with some ink, anything else in it already masked out: a whole
    page's ink plane or one segment of a line's) as MNIST shows a digit: uint8 (28, 28)."""
    digit = _crop(ink)
    digit = _at_work_scale(digit)
    digit = _normalise_strokes(digit)
    return _place(_fit_box(digit))


def ink_plane(image: Image.Image, name: str) -> np.ndarray:
    """float32 (H, W) in 0..1: how much ink each pixel holds, the paper at 0 and the strong strokes at 1,
    noise and specks taken away. ImageError if there is no ink."""
    return kept_ink(*raw_ink(image, name), name)


def kept_ink(ink: np.ndarray, threshold: float, name: str) -> np.ndarray:
    """ink_plane() from raw_ink()'s (ink, threshold), for a caller that needs those too."""
    binary = ink > threshold
    window = _window(binary, 0)
    if window is None:
        raise ImageError(f"{name}: no ink found; pass a picture of a digit, drawn dark on light or light on dark")
    # the marks are labelled within the ink's box, not over the whole picture: the same marks, numbered alike
    marks, count = ndimage.label(binary[window], structure=np.ones((3, 3)))
    mass = ndimage.sum_labels(ink[window], marks, index=np.arange(1, count + 1))
    kept = np.zeros(count + 1, dtype=bool)
    kept[np.flatnonzero(mass >= SPECK_SHARE * mass.sum()) + 1] = True
    keep = np.zeros(ink.shape, dtype=bool)
    keep[window] = kept[marks]
    return scaled_ink(ink, keep, threshold)


def scaled_ink(ink: np.ndarray, keep: np.ndarray, threshold: float) -> np.ndarray:
    """raw_ink's plane with only the marks `keep` (bool, H x W, some true) and their soft edges, stretched so that
    the paper's noise level is 0 and the strong strokes (the 90th percentile of the kept ink) are 1."""
    strong = float(np.percentile(ink[keep], 90))
    scaled = np.zeros(ink.shape, dtype=np.float32)
    window = _window(keep, EDGE)  # the kept marks' box and room for their soft edges: nothing beyond is ink
    near = ndimage.binary_dilation(keep[window], iterations=EDGE)  # the soft edges around the kept strokes
    part = np.clip((ink[window] - threshold) / max(strong - threshold, 1e-6), 0, 1)
    scaled[window] = np.where(near, part, 0)
    return scaled


def _window(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The box around the true pixels of `mask`, `margin` pixels wider on each side within the plane; None if
    none is true."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    height, width = mask.shape
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, height)),
        slice(max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, width)),
    )


def raw_ink(image: Image.Image, name: str) -> tuple[np.ndarray, float]:
    """(ink, threshold): float32 (H, W), how far each pixel is from the paper towards the ink's side, and the
    level above which a pixel is ink (beyond the paper's noise and a quarter of the contrast). The image is
    reduced first when its longer side is over LARGEST_SIDE. ImageError if nothing contrasts with the paper."""
    grey, alpha = _planes(image)
    if alpha is not None:
        grey = _composite(grey, alpha)
    border = _border(grey)
    paper = float(np.median(border))
    smooth = ndimage.uniform_filter(grey, 3, mode="nearest")  # a lone noisy pixel does not decide the polarity
    dark, light = paper - float(smooth.min()), float(smooth.max()) - paper
    ink = np.clip(paper - grey if dark > light else grey - paper, 0, None)  # dark ink on light paper is inverted
    contrast = max(dark, light)
    if contrast < MIN_CONTRAST:
        raise ImageError(
            f"{name}: no ink found (the darkest and lightest parts differ from the paper by {contrast:.0%} at "
            f"most); pass a picture of a digit, drawn dark on light or light on dark"
        )
    # the paper's noise from the frame's median absolute deviation: ink reaching into the frame does not count
    noise = 1.4826 * float(np.median(np.abs(border - paper)))
    return ink, max(NOISE_SIGMAS * noise, 0.25 * contrast)


def _planes(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey, alpha or None), float32 in 0..1, from an image of any mode; a huge one reduced by area first."""
    if max(image.size) > LARGEST_SIDE:
        image = _reduced(image)
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float32)
        top = float(values.max()) if values.size else 0.0
        scale = 65535.0 if mode.startswith("I;16") or top > 255 else 1.0 if mode == "F" and top <= 1 else 255.0
        return np.clip(values / scale, 0, 1), None
    if mode in ("P", "PA", "La", "RGBa") or "transparency" in image.info:  # palette, premultiplied, a tRNS colour
        image = image.convert("RGBA")
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255 if "A" in image.getbands() else None
    return grey, alpha


def _reduced(image: Image.Image) -> Image.Image:
    """`image` with its longer side at most LARGEST_SIDE, each new pixel the mean of a block of old ones."""
    factor = math.ceil(max(image.size) / LARGEST_SIDE)
    if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        image = image.convert("RGBA" if ("A" in image.getbands() or "transparency" in image.info) else "RGB")
    return image.reduce(factor)


def _composite(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A picture with transparency laid on paper that contrasts with its strokes. Where the background is
    transparent (the frame mostly so), the opaque strokes are the ink: dark strokes go on white, light ones
    on black, so that the ink is the alpha. Otherwise the picture is laid on white, as a viewer shows it."""
    if float(np.median(_border(alpha))) < 0.5:
        opaque = alpha > 0.5
        stroke = float(grey[opaque].mean()) if opaque.any() else 0.0
        paper = 1.0 if stroke < 0.5 else 0.0
    else:
        paper = 1.0
    return alpha * grey + (1 - alpha) * paper


def _border(plane: np.ndarray) -> np.ndarray:
    """The pixels of the frame BORDER_SHARE wide around `plane`."""
    height, width = plane.shape
    dy, dx = max(1, round(height * BORDER_SHARE)), max(1, round(width * BORDER_SHARE))
    return np.concatenate([plane[:dy].ravel(), plane[-dy:].ravel(), plane[:, :dx].ravel(), plane[:, -dx:].ravel()])


def _crop(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """`plane` resized, anti-aliased (Pillow's filters widen with the reduction, so no stroke is skipped)."""
    if plane.shape == (height, width):
        return plane
    smaller = height < plane.shape[0] or width < plane.shape[1]
    method = Image.Resampling.BOX if smaller else Image.Resampling.BILINEAR
    resized = Image.fromarray(plane.astype(np.float32), mode="F").resize((width, height), method)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def _fitted(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(height, width) of `shape` scaled so that its longer side is `side`, its aspect ratio kept."""
    height, width = shape
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _at_work_scale(digit: np.ndarray) -> np.ndarray:
    """The cropped digit at WORK_SCALE times its final size, its strong strokes stretched back to 1 (a thin
    stroke on a large canvas is faint once averaged down)."""
    digit = _resize(digit, *_fitted(digit.shape, BOX_SIDE * WORK_SCALE))
    strong = float(np.percentile(digit[digit > 0.05], 90)) if (digit > 0.05).any() else float(digit.max())
    return np.clip(digit / max(strong, 1e-6), 0, 1)


def stroke_width(digit: np.ndarray) -> float:
    """The strokes' mean width in pixels of `digit`: twice the area over the outline's length, at half
    brightness (a stroke of width w and length L has area w L and an outline 2 L long)."""
    mask = digit > 0.5
    outline = mask & ~ndimage.binary_erosion(mask)
    return 2 * float(mask.sum()) / max(float(outline.sum()), 1.0)


def _normalise_strokes(digit: np.ndarray) -> np.ndarray:
    """Strokes outside WIDTH_RANGE brought to STROKE_WIDTH (in final pixels) by a grey dilation or erosion
    with a disc, so that a fine pen on a big page and a thick marker both look like MNIST's strokes."""
    width = stroke_width(digit) / WORK_SCALE
    low, high = WIDTH_RANGE
    if low <= width <= high:
        return digit
    radius = round(abs(STROKE_WIDTH - width) * WORK_SCALE / 2)
    if radius == 0:
        return digit
    disc = _disc(radius)
    if width < low:
        padded = np.pad(digit, radius)  # dilation widens the digit: room for it, cropped again below
        return _crop(ndimage.grey_dilation(padded, footprint=disc))
    thinner = ndimage.grey_erosion(digit, footprint=disc)
    if (thinner > 0.5).sum() < 0.25 * (digit > 0.5).sum():  # a blob, not strokes: eroding would erase it
        return digit
    return _crop(thinner) if thinner.any() else digit


def _disc(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius + radius  # a round disc, not a diamond, for small radii too


def _fit_box(digit: np.ndarray) -> np.ndarray:
    """The digit scaled to fit BOX_SIDE x BOX_SIDE, its aspect ratio kept, its strokes at full brightness."""
    digit = _resize(digit, *_fitted(digit.shape, BOX_SIDE))
    top = float(digit.max())
    return digit / top if top > 0 else digit


def _place(digit: np.ndarray) -> np.ndarray:
    """`digit` in a 28x28 field, shifted so that its centre of mass lands at CENTRE, as LeCun placed MNIST's."""
    height, width = digit.shape
    cy, cx = ndimage.center_of_mass(digit)
    top = min(max(round(CENTRE - cy), 0), MNIST_SIDE - height)
    left = min(max(round(CENTRE - cx), 0), MNIST_SIDE - width)
    field = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return np.round(field * 255).astype(np.uint8)
