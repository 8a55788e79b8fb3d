"""A decoded picture brought to MNIST's form (digitlab.inference.mnist_like): to_mnist().

Synthetic drawings of every kind a person may pass (dark on light, light on dark, transparent, off-centre,
huge, thin and thick strokes, 16-bit, palette, each file format) must land as MNIST's digits lie: a light
digit on black, inside 20x20, its centre of mass at the centre of the 28x28 field. A page without ink is
refused with one line that names it.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitlab.inference import mnist_like
from digitlab.inference.decode import ImageError, decode
from digitlab.inference.mnist_like import IMAGE_SHAPE, SPECK_SHARE, kept_ink, to_mnist
from drawings import drawing, encode


def assert_mnist_like(digit: np.ndarray) -> None:
    """As MNIST's digits: uint8 28x28, bright ink on a black field, inside 20x20, centred by mass."""
    assert digit.shape == IMAGE_SHAPE == (28, 28) and digit.dtype == np.uint8
    assert digit.max() == 255
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    assert rows[-1] - rows[0] < 20 and cols[-1] - cols[0] < 20
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) == 19  # the longer side fills the box
    cy, cx = ndimage.center_of_mass(digit.astype(float))
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    assert (digit == 0).mean() > 0.6  # the background is black, not grey
    assert (digit > 127).sum() >= 25  # strokes at full brightness, not faint


def prepared(image: Image.Image, fmt: str = "PNG", **options) -> np.ndarray:
    return to_mnist(decode(encode(image, fmt, **options), f"digit.{fmt.lower()}"), f"digit.{fmt.lower()}")


def transparent(stroke_colour: tuple[int, int, int], mode: str = "RGBA") -> Image.Image:
    """Opaque strokes on a fully transparent background whose hidden colour is the strokes' own."""
    coverage = drawing(paper=0, ink=255)
    colour = Image.new("RGB", coverage.size, stroke_colour)
    image = colour.convert("RGBA")
    image.putalpha(coverage)
    return image.convert(mode) if mode != "RGBA" else image


def palette_with_transparency() -> Image.Image:
    image = drawing(paper=0, ink=1, mode="P")
    image.putpalette([255, 255, 255, 20, 20, 20] + [0, 0, 0] * 254)
    image.info["transparency"] = 0  # index 0, the background, is transparent
    return image


def sixteen_bit(light_on_dark: bool) -> Image.Image:
    plain = np.asarray(drawing(paper=0, ink=255) if light_on_dark else drawing(), dtype=np.uint16)
    return Image.fromarray(plain * 257 // 4 + 1000)  # mode I;16, a narrow range of the 16 bits


GOOD = {
    "dark on light": lambda: prepared(drawing()),
    "light on dark": lambda: prepared(drawing(paper=0, ink=255)),
    "grey ink on grey paper": lambda: prepared(drawing(paper=170, ink=90)),
    "RGB": lambda: prepared(drawing(paper=(250, 245, 230), ink=(20, 40, 160), mode="RGB")),
    "RGBA, dark strokes on transparency": lambda: prepared(transparent((0, 0, 0))),
    "RGBA, white strokes on transparency": lambda: prepared(transparent((255, 255, 255))),
    "LA": lambda: prepared(transparent((0, 0, 0), mode="LA")),
    "palette with transparency": lambda: prepared(palette_with_transparency()),
    "palette": lambda: prepared(drawing(mode="RGB").convert("P")),
    "16-bit, dark on light": lambda: prepared(sixteen_bit(False)),
    "16-bit, light on dark": lambda: prepared(sixteen_bit(True)),
    "32-bit integer": lambda: to_mnist(Image.fromarray(np.asarray(drawing(), dtype=np.int32)), "int32"),
    "off-centre, small in a corner": lambda: prepared(drawing(size=(400, 300), box=(0.02, 0.05, 0.2, 0.35))),
    "huge canvas, thin strokes": lambda: prepared(drawing(size=(3000, 2000), box=(0.4, 0.1, 0.7, 0.9), width=3)),
    "thick strokes": lambda: prepared(drawing(width=45)),
    "hairline strokes": lambda: prepared(drawing(size=(600, 600), width=1)),
    "tall and thin (a one)": lambda: prepared(drawing(strokes=[[(0.5, 0.1), (0.5, 0.9)]])),
    "wide and flat": lambda: prepared(drawing(size=(400, 100), strokes=[[(0.1, 0.5), (0.9, 0.5)]], width=12)),
    "JPEG": lambda: prepared(drawing(), "JPEG", quality=60),
    "GIF": lambda: prepared(drawing(), "GIF"),
    "TIFF": lambda: prepared(drawing(), "TIFF"),
    "WebP": lambda: prepared(drawing(), "WEBP", quality=70),
    "BMP": lambda: prepared(drawing(), "BMP"),
    "1-bit": lambda: prepared(drawing().convert("1"), "PNG"),
}


@pytest.mark.parametrize("case", GOOD)
def test_a_drawing_lands_as_an_mnist_digit(case):
    assert_mnist_like(GOOD[case]())


def test_polarity_and_paper_do_not_change_the_result():
    dark_on_light = prepared(drawing())
    for other in (drawing(paper=0, ink=255), drawing(paper=200, ink=60), transparent((0, 0, 0))):
        assert np.abs(prepared(other).astype(int) - dark_on_light).mean() < 8


def test_noise_and_specks_on_the_paper_are_taken_away():
    rng = np.random.default_rng(0)
    page = np.asarray(drawing(size=(300, 300), box=(0.25, 0.25, 0.75, 0.75)), dtype=float)
    page = page + rng.normal(0, 10, page.shape)
    for y, x in ((10, 10), (280, 20), (150, 290)):  # dust: specks far from the digit
        page[y : y + 3, x : x + 3] = 0
    noisy = prepared(Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)))
    assert_mnist_like(noisy)
    clean = prepared(drawing(size=(300, 300), box=(0.25, 0.25, 0.75, 0.75)))
    assert np.abs(noisy.astype(int) - clean).mean() < 10


def test_thin_and_thick_strokes_come_out_as_wide_as_mnists():
    widths = []
    for image in (drawing(size=(3000, 2000), box=(0.4, 0.1, 0.7, 0.9), width=3), drawing(width=45), drawing()):
        digit = prepared(image).astype(np.float32) / 255
        widths.append(mnist_like.stroke_width(np.kron(digit, np.ones((8, 8)))) / 8)  # measured as to_mnist measures
    assert all(1.5 <= width <= 4.0 for width in widths), widths


@pytest.mark.parametrize(
    "image", [Image.new("L", (200, 200), 255), Image.new("RGB", (50, 80), (30, 30, 30)), Image.new("RGBA", (64, 64))]
)
def test_a_page_without_ink_is_refused(image):
    with pytest.raises(ImageError, match=r"^blank\.png: no ink found") as caught:
        to_mnist(decode(encode(image), "blank.png"), "blank.png")
    assert "\n" not in str(caught.value)


def test_faint_noise_alone_is_no_ink():
    noise = np.random.default_rng(1).normal(240, 3, (120, 120))
    with pytest.raises(ImageError, match="no ink"):
        to_mnist(Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)), "noise.png")


def test_the_kept_ink_is_that_of_the_whole_plane():
    """kept_ink() labels and dilates within the ink's box: the plane must be what the whole plane's gives."""
    rng = np.random.default_rng(1)
    ink = (rng.random((120, 90)) * 0.2).astype(np.float32)  # the paper's noise, under the threshold
    ink[30:70, 20:26] = 0.9  # a stroke
    ink[75:78, 60:63] = 0.6  # a speck, dropped
    ink[10:14, 40:70] = 0.8  # a bar, kept
    marks, count = ndimage.label(ink > 0.3, structure=np.ones((3, 3)))
    mass = ndimage.sum_labels(ink, marks, index=np.arange(1, count + 1))
    keep = np.isin(marks, np.flatnonzero(mass >= SPECK_SHARE * mass.sum()) + 1)
    strong = float(np.percentile(ink[keep], 90))
    near = ndimage.binary_dilation(keep, iterations=2)
    whole = np.where(near, np.clip((ink - 0.3) / (strong - 0.3), 0, 1), 0).astype(np.float32)
    kept = kept_ink(ink, 0.3, "x")
    assert np.array_equal(kept, whole) and kept[76, 61] == 0 and kept[12, 50] > 0
