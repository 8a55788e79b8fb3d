"""The IDX file format (digitlab.data.idx): write, read and validate; a damaged file is a DataError naming it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from digitlab.data import idx
from digitlab.data.dataset import load
from digitlab.errors import DataError
from helpers import NAMES
from permissions import file_modes_enforced

# --- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (5, 28, 28), (3, 12, 16), (2, 3, 4, 5)])
def test_write_then_read_round_trips(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"file{suffix}"
    idx.write(path, array)
    on_disk = path.read_bytes()
    assert (on_disk[:2] == b"\x1f\x8b") == (suffix == ".gz")  # gzip exactly when the name says so
    data_bytes = idx.read_bytes(path)
    assert data_bytes == idx.encode(array)
    parsed = idx.parse(data_bytes, ndim=len(shape), source=str(path))
    assert parsed.dtype == np.uint8
    assert parsed.shape == shape
    np.testing.assert_array_equal(parsed, array)


def test_encode_header_is_big_endian_idx():
    encoded = idx.encode(np.zeros((2, 3, 258), dtype=np.uint8))
    assert encoded[:4] == bytes([0, 0, 0x08, 3])
    assert encoded[4:16] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (258).to_bytes(4, "big")
    assert len(encoded) == 16 + 2 * 3 * 258


# --- damaged files: each is a DataError naming the file -------------------------------------------


def _truncate_body(raw: bytes) -> bytes:
    return raw[:-7]


def _truncate_header(raw: bytes) -> bytes:
    return raw[:6]


def _too_short(raw: bytes) -> bytes:
    return raw[:3]


def _wrong_magic(raw: bytes) -> bytes:
    return b"\x00\x00\x0d" + raw[3:]  # element type 0x0d (float) instead of 0x08


def _wrong_ndim(raw: bytes) -> bytes:
    return raw[:3] + bytes([raw[3] + 1]) + raw[4:]


def _trailing_bytes(raw: bytes) -> bytes:
    return raw + b"\x00\x01\x02"


def _wrong_count(raw: bytes) -> bytes:
    count = int.from_bytes(raw[4:8], "big")
    return raw[:4] + (count + 1).to_bytes(4, "big") + raw[8:]


def _zero_dimension(raw: bytes) -> bytes:
    return raw[:4] + (0).to_bytes(4, "big") + raw[8:]


CORRUPTIONS = {
    "truncated body": (_truncate_body, "truncated"),
    "truncated header": (_truncate_header, "truncated header"),
    "too short": (_too_short, "too short"),
    "wrong magic": (_wrong_magic, "magic"),
    "wrong ndim": (_wrong_ndim, "magic"),
    "trailing bytes": (_trailing_bytes, "trailing bytes"),
    "wrong count": (_wrong_count, "truncated"),
    "zero dimension": (_zero_dimension, "zero"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("key", ["train_images", "test_labels"])
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_damaged_idx_file_raises_data_error_naming_it(make_dataset, corruption, key, gz):
    folder = make_dataset(gz=gz, n_train=40, n_test=20)
    path = folder / (NAMES[key] + (".gz" if gz else ""))
    damage, expected_words = CORRUPTIONS[corruption]
    damaged = damage(idx.read_bytes(path))
    path.write_bytes(gzip.compress(damaged) if gz else damaged)
    with pytest.raises(DataError) as caught:
        load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert str(path) in message
    assert expected_words in message


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_parse_rejects_damaged_bytes_directly(corruption):
    raw = idx.encode(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    damage, expected_words = CORRUPTIONS[corruption]
    with pytest.raises(DataError, match=expected_words) as caught:
        idx.parse(damage(raw), ndim=3, source="some/file-idx3-ubyte")
    assert "some/file-idx3-ubyte" in str(caught.value)


def _cut_gzip(blob: bytes) -> bytes:
    return blob[: len(blob) // 2]  # stream ends early: EOFError inside gzip


def _flip_crc(blob: bytes) -> bytes:
    return blob[:-8] + bytes([blob[-8] ^ 0xFF]) + blob[-7:]  # CRC32 trailer no longer matches


def _flip_deflate(blob: bytes) -> bytes:
    middle = len(blob) // 2
    return blob[:middle] + bytes(b ^ 0xA5 for b in blob[middle : middle + 16]) + blob[middle + 16 :]


def _bad_header_flags(blob: bytes) -> bytes:
    return blob[:2] + b"\x09" + blob[3:]  # compression method 9 does not exist


@pytest.mark.parametrize("damage", [_cut_gzip, _flip_crc, _flip_deflate, _bad_header_flags])
@pytest.mark.parametrize("key", ["train_images", "train_labels"])
def test_damaged_gzip_raises_data_error_naming_the_file(make_dataset, damage, key):
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    path = folder / f"{NAMES[key]}.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError) as caught:
        load(folder, log=lambda *a: None)
    assert str(path) in str(caught.value)


def test_read_bytes_of_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read") as caught:
        idx.read_bytes(tmp_path / "nope-idx1-ubyte")
    assert "nope-idx1-ubyte" in str(caught.value)


def test_unreadable_file_is_a_data_error(raw_data_dir):
    path = raw_data_dir / NAMES["test_labels"]
    path.chmod(0)
    try:
        with file_modes_enforced(), pytest.raises(DataError, match="cannot read"):
            load(raw_data_dir, log=lambda *a: None)
    finally:
        path.chmod(0o644)
