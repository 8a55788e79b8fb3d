"""A person's image file read as a picture: its bytes decoded by Pillow, or refused with one line.

Holds the limits (MAX_PIXELS, MAX_FILE_BYTES, MIN_SIDE), the suffixes a folder's image files have (SUFFIXES),
the errors (ImageError, ImageTooLarge, UnreadableFormat), reading a file or standard input (load_file,
read_stdin) and decoding bytes (decode; with draft=True a large JPEG is decoded at a reduced scale, DRAFT_SIDE).
Making the decoded picture look like an MNIST digit is inference.mnist_like's job.

decode() refuses what cannot be a picture of a digit with one line naming the file (ImageError and its
subclasses carry the HTTP status a server answers with): an empty file, one that is no image, a truncated
one, a format Pillow cannot read, an image too large to decode safely (a decompression bomb is refused from
its header, before its pixels are decompressed), one too small to hold a digit.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from digitlab.errors import DigitlabError, first_line

# 50 megapixels: larger than any phone camera's photo (a 48 MP sensor writes 8000x6000), yet bounded: a
# greyscale float copy of it is 200 MB. A PNG of 20000x20000 one-bit pixels compresses to some 60 kB.
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 100_000_000  # an image file larger than this is not read at all
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # a folder's files taken as images
# predict's JPEGs are decoded at a reduced scale (decode(draft=True)) with their longer side kept at least this:
# a 12 MP photo (4000x3000) at 1/4, 1000x750, in which a digit of a fifth of the height is still 150 px tall,
# near mnist_like's 160-px working size.
DRAFT_SIDE = 1000
MIN_SIDE = 8  # pixels: anything smaller cannot show a digit's shape
# Formats Pillow cannot read, by their first bytes, so that the message says what the file is.
KNOWN_UNREADABLE = [
    (b"%PDF", "a PDF document"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML document (an SVG drawing?)"),
]
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


class ImageError(DigitlabError):
    """A file that cannot be used as a picture of a digit; the message names the file (HTTP 400)."""


class ImageTooLarge(ImageError):
    """An image with more pixels than MAX_PIXELS, a possible decompression bomb (HTTP 413)."""

    http_status = 413


class UnreadableFormat(ImageError):
    """An image in a format Pillow cannot decode (HTTP 415)."""

    http_status = 415


def load_file(path: str | Path, draft: bool = False) -> Image.Image:
    """decode() of a file's bytes, or of standard input's for "-"; ImageError, one line, if it cannot be read."""
    name = str(path)
    if name == "-":
        return decode(read_stdin(), name, draft)
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{name}: no such file; pass an image file, a folder of them or a pattern such as '*.png'")
    if path.is_dir():
        raise ImageError(f"{name}: a folder without image files ({', '.join(SUFFIXES)}); pass image files")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageTooLarge(f"{name}: the file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,}")
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"{name}: cannot be read ({error.strerror or error}); check its permissions") from None
    return decode(data, name, draft)


def read_stdin() -> bytes:
    """Standard input's bytes, for an image named "-"; ImageTooLarge past MAX_FILE_BYTES."""
    data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ImageTooLarge(f"-: standard input holds over {MAX_FILE_BYTES:,} bytes, the limit for an image")
    return data


def decode(data: bytes, name: str, draft: bool = False) -> Image.Image:
    """The picture in `data` (a file's bytes), loaded: the first frame of an animation, turned upright as its
    EXIF orientation says. Refuses, with one line naming `name`, what cannot be a picture of a digit. With
    `draft`, a JPEG at least twice DRAFT_SIDE on its longer side is decoded at 1/2, 1/4 or 1/8 scale."""
    if not data:
        raise ImageError(f"{name}: the file is empty; pass an image file (PNG, JPEG, ...)")
    try:
        image = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except UnidentifiedImageError:
        raise _unidentified(data, name) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLarge(f"{name}: {first_line(error)}; pass an image under {MAX_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError) as error:  # a header that Pillow recognised but could not parse
        raise ImageError(f"{name}: the image is damaged ({first_line(error)}); save it again as PNG or JPEG") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(
            f"{name}: the image is {width}x{height} pixels, over the limit of {MAX_PIXELS:,} pixels (a possible "
            f"decompression bomb); scale it down below that"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"{name}: the image is only {width}x{height} pixels, too small to hold a digit; pass one of at least "
            f"{MIN_SIDE}x{MIN_SIDE}"
        )
    if draft and image.format == "JPEG":
        _draft(image)
    try:
        image.load()  # the first frame of a GIF, an animated PNG or WebP, a multi-page TIFF
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of a picture already upright
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLarge(f"{name}: {first_line(error)}; pass an image under {MAX_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, MemoryError) as error:
        reason = first_line(error)
        if "truncated" in reason or isinstance(error, EOFError):
            raise ImageError(f"{name}: the file is truncated ({reason}); copy or save it again") from None
        if "decoder" in reason or "not supported" in reason or "unsupported" in reason.lower():
            raise UnreadableFormat(
                f"{name}: Pillow cannot decode this {image.format} image ({reason}); save it as PNG or JPEG"
            ) from None
        raise ImageError(
            f"{name}: the {image.format} image is damaged ({reason}); save it again as PNG or JPEG"
        ) from None
    return image


def _draft(image: Image.Image) -> None:
    """Decode the JPEG `image` at 1/2, 1/4 or 1/8 of its size, the smallest that keeps its longer side at least
    DRAFT_SIDE: the decoder then computes fewer DCT coefficients per block, several times faster than decoding
    it whole and reducing it after."""
    width, height = image.size
    scale = next((k for k in (8, 4, 2) if max(width, height) // k >= DRAFT_SIDE), 1)
    if scale > 1:
        image.draft(None, (width // scale, height // scale))


def _unidentified(data: bytes, name: str) -> ImageError:
    """The error for bytes in which Pillow recognises no image format: a known format it cannot read (415),
    or something that is no image at all (400)."""
    head = data[:64].lstrip()
    for magic, what in KNOWN_UNREADABLE:
        if head.startswith(magic):
            return UnreadableFormat(f"{name}: the file is {what}, which digitlab cannot read; save it as PNG or JPEG")
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return UnreadableFormat(
            f"{name}: the file is a HEIF/AVIF image ({data[8:12].decode()}), which this Pillow cannot read; "
            f"save it as PNG or JPEG"
        )
    return ImageError(
        f"{name}: the file is not an image (no image format recognised in it); pass a PNG, JPEG, BMP, GIF, TIFF "
        f"or WebP file"
    )
