"""Synthetic drawings of digits for the image tests: strokes drawn with Pillow (drawing) and saved as a file's
bytes in any format (encode); and a decompression bomb (bomb). Import them as `from drawings import ...`
(pytest's `pythonpath` holds tests/)."""

from __future__ import annotations

import io
import zlib

from PIL import Image, ImageDraw

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


def bomb() -> bytes:
    """A valid PNG of 20000x20000 one-bit pixels (400 megapixels) that compresses to some 60 kB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    side = 20_000
    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # bit depth 1, greyscale
    packer = zlib.compressobj(9)
    row = bytes(1 + side // 8)  # filter byte + packed pixels
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
