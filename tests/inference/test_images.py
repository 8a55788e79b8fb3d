"""A person's own pictures made MNIST-like (digitlab.inference.images): decode() and to_mnist().

Synthetic drawings of every kind a person may pass (dark on light, light on dark, transparent, off-centre,
huge, thin and thick strokes, 16-bit, palette, each file format) must land as MNIST's digits lie: a light
digit on black, inside 20x20, its centre of mass at the centre of the 28x28 field. Every file that cannot
be used is refused with one line that names it, before a decompression bomb is decompressed.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile
from scipy import ndimage

from digitlab.inference import images
from digitlab.inference.images import ImageError, ImageTooLarge, UnreadableFormat, decode, load_file, to_mnist

SEVEN = [(0.28, 0.2), (0.75, 0.2), (0.42, 0.85)]  # a 7 as fractions of the canvas: top bar, then the stem
FOUR = [[(0.6, 0.85), (0.6, 0.15), (0.25, 0.6), (0.75, 0.6)]]


def drawing(
    size=(200, 200), strokes=(SEVEN,), width=None, paper=255, ink=0, mode="L", box=(0.0, 0.0, 1.0, 1.0)
) -> Image.Image:
    """`strokes` (lines through points given as fractions of `box`, itself a fraction of the canvas) drawn in
    `ink` on `paper`, `width` pixels wide (default: a twelfth of the box's height)."""
    image = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = box[0] * size[0], box[1] * size[1], box[2] * size[0], box[3] * size[1]
    width = width or max(1, round((bottom - top) / 12))
    for points in strokes:
        xy = [(left + x * (right - left), top + y * (bottom - top)) for x, y in points]
        draw.line(xy, fill=ink, width=width, joint="curve")
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def assert_mnist_like(digit: np.ndarray) -> None:
    """As MNIST's digits: uint8 28x28, bright ink on a black field, inside 20x20, centred by mass."""
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
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
        widths.append(images.stroke_width(np.kron(digit, np.ones((8, 8)))) / 8)  # measured as to_mnist measures
    assert all(1.5 <= width <= 4.0 for width in widths), widths


def test_the_first_frame_of_an_animation_is_read():
    seven, four = drawing(), drawing(strokes=FOUR)
    animation = encode(seven, "GIF", save_all=True, append_images=[four], duration=100, loop=0)
    assert np.array_equal(to_mnist(decode(animation, "a.gif"), "a.gif"), prepared(seven, "GIF"))


def test_a_photo_is_turned_upright_by_its_exif_orientation():
    upright = drawing(size=(200, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to show it
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    decoded = decode(encode(stored, "JPEG", exif=exif, quality=95), "photo.jpg")
    assert decoded.size == upright.size


def png_header_patched(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR claims width x height pixels (its CRC fixed, so the header is valid)."""
    data = bytearray(encode(drawing(size=(16, 16))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def noise_png() -> bytes:
    return encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)))


BAD = {
    "empty.png": (lambda: b"", ImageError, "empty"),
    "notes.png": (lambda: b"these are words, not pixels\n" * 20, ImageError, "not an image"),
    "half.png": (lambda: noise_png()[:2000], ImageError, "truncated"),
    "tiny.png": (lambda: encode(Image.new("L", (5, 5), 255)), ImageError, "too small"),
    "bomb.png": (lambda: png_header_patched(100_000, 100_000), ImageTooLarge, "pixels"),
    "big.png": (lambda: png_header_patched(8000, 7000), ImageTooLarge, "over the limit"),
    "paper.pdf": (lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", UnreadableFormat, "PDF"),
    "photo.heic": (lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), UnreadableFormat, "HEIF"),
}


@pytest.mark.parametrize("name", BAD)
def test_an_unusable_file_is_refused_with_one_line_naming_it(name):
    data, kind, words = BAD[name]
    with pytest.raises(kind) as caught:
        decode(data(), name)
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and words in message and "\n" not in message


def test_errors_carry_the_http_status_a_server_answers():
    assert ImageError.http_status == 400 and ImageTooLarge.http_status == 413 and UnreadableFormat.http_status == 415
    assert issubclass(ImageTooLarge, ImageError) and issubclass(UnreadableFormat, ImageError)


def test_a_bomb_is_refused_from_its_header_before_it_is_decoded(monkeypatch):
    def never(self):
        raise AssertionError("the pixels were decoded")

    data = png_header_patched(8000, 7000)
    monkeypatch.setattr(Image.Image, "load", never)
    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    with pytest.raises(ImageTooLarge):
        decode(data, "big.png")


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


def test_load_file_reads_a_path_and_names_a_missing_one(tmp_path):
    path = tmp_path / "seven.png"
    path.write_bytes(encode(drawing()))
    assert load_file(path).size == (200, 200)
    with pytest.raises(ImageError, match="no such file"):
        load_file(tmp_path / "missing.png")
