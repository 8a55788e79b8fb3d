"""The IDX file format (LeCun's MNIST files): read, validate and write, gzip-compressed or raw."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from digitlab.errors import DataError

# The four standard files; a data folder holds these names, raw or with ".gz".
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# sha256 of the uncompressed MNIST files (the same whatever compressed them).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_SHAPES = {
    "train_images": (60000, 28, 28),
    "train_labels": (60000,),
    "test_images": (10000, 28, 28),
    "test_labels": (10000,),
}

UBYTE = 0x08  # the only element type these files use


def read_bytes(path: Path) -> bytes:
    """The uncompressed bytes of a raw or gzip file."""
    return read_file(path)[1]


def read_file(path: Path) -> tuple[bytes, bytes]:
    """(the file's bytes as stored, its uncompressed bytes): equal unless it is gzip-compressed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    if is_gzip(raw):
        try:
            return raw, gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path} is a damaged gzip file ({error}); replace it with a good copy") from None
    return raw, raw


def is_gzip(raw: bytes) -> bool:
    return raw[:2] == b"\x1f\x8b"


def parse(data: bytes, ndim: int, source: str) -> np.ndarray:
    """Validate an IDX byte string holding `ndim` dimensions of unsigned bytes and return it as an array."""
    if len(data) < 4:
        raise DataError(f"{source}: only {len(data)} bytes, too short to be an IDX file")
    if data[0] != 0 or data[1] != 0 or data[2] != UBYTE or data[3] != ndim:
        raise DataError(
            f"{source}: bad magic number {data[:4].hex()} (expected 000008{ndim:02x}: "
            f"unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}); is this the right file?"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(size == 0 for size in shape):
        raise DataError(f"{source}: a dimension is zero {shape}")
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{source}: {kind}: header says {shape} = {expected} bytes, file has {len(data)}; "
            f"replace it with a whole copy"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def encode(array: np.ndarray) -> bytes:
    """IDX bytes for a uint8 array (used to write test fixtures and custom datasets)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UBYTE, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.tobytes()


def write(path: Path, array: np.ndarray) -> None:
    data = encode(array)
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
