"""A person's image file decoded (digitlab.inference.decode): decode() and load_file().

Every file that cannot be used is refused with one line that names it, before a decompression bomb is
decompressed; an animation gives its first frame, a photo is turned upright by its EXIF orientation.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from digitlab.inference.decode import (
    DRAFT_SIDE,
    ImageError,
    ImageTooLarge,
    UnreadableFormat,
    decode,
    load_file,
)
from digitlab.inference.mnist_like import to_mnist
from drawings import FOUR, drawing, encode


def test_the_first_frame_of_an_animation_is_read():
    seven, four = drawing(), drawing(strokes=FOUR)
    animation = encode(seven, "GIF", save_all=True, append_images=[four], duration=100, loop=0)
    first = to_mnist(decode(encode(seven, "GIF"), "seven.gif"), "seven.gif")
    assert np.array_equal(to_mnist(decode(animation, "a.gif"), "a.gif"), first)


def test_a_photo_is_turned_upright_by_its_exif_orientation():
    upright = drawing(size=(200, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to show it
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    decoded = decode(encode(stored, "JPEG", exif=exif, quality=95), "photo.jpg")
    assert decoded.size == upright.size


def test_a_large_jpeg_is_drafted_for_predict_and_keeps_its_digit():
    photo = drawing(size=(4000, 3000), box=(0.3, 0.2, 0.6, 0.8))
    data = encode(photo, "JPEG", quality=90)
    assert decode(data, "photo.jpg").size == (4000, 3000)  # whole unless asked
    drafted = decode(data, "photo.jpg", draft=True)
    assert drafted.size == (4000 // 4, 3000 // 4)  # the smallest of 1/2, 1/4, 1/8 keeping DRAFT_SIDE
    assert max(drafted.size) >= DRAFT_SIDE
    seen, whole = to_mnist(drafted, "photo.jpg").astype(int), to_mnist(decode(data, "photo.jpg"), "photo.jpg")
    assert np.abs(seen - whole).max() <= 16 and np.abs(seen - whole).mean() < 1  # the digit the model sees alike
    smaller = encode(drawing(size=(1900, 1200)), "JPEG")
    assert decode(smaller, "scan.jpg", draft=True).size == (1900, 1200)  # half would be under DRAFT_SIDE
    png = encode(drawing(size=(4000, 3000)))
    assert decode(png, "big.png", draft=True).size == (4000, 3000)  # only a JPEG's decoder can draft


def test_a_drafted_photo_is_turned_upright_too():
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = drawing(size=(2000, 3000)).transpose(Image.Transpose.ROTATE_90)
    assert decode(encode(stored, "JPEG", exif=exif), "photo.jpg", draft=True).size == (1000, 1500)


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


def test_load_file_reads_a_path_and_names_a_missing_one(tmp_path):
    path = tmp_path / "seven.png"
    path.write_bytes(encode(drawing()))
    assert load_file(path).size == (200, 200)
    with pytest.raises(ImageError, match="no such file"):
        load_file(tmp_path / "missing.png")
