"""The IDX reader and validator (digitlab.idx) and the checks data.load adds on top of it."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import torch

from digitlab import data, idx
from digitlab.idx import DataError

from conftest import NAMES, synthetic_digits, uncompressed_sha256


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


def test_gz_and_raw_folders_load_identically(data_dir, raw_data_dir):
    from_gz = data.load(data_dir, log=lambda *a: None)
    from_raw = data.load(raw_data_dir, log=lambda *a: None)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(from_gz, field), getattr(from_raw, field)), field
    assert from_gz.checksums == from_raw.checksums == uncompressed_sha256(raw_data_dir)
    assert from_gz.train_images.dtype == torch.uint8 and from_gz.train_labels.dtype == torch.int64
    assert from_gz.image_shape == (28, 28)
    assert from_gz.num_classes == 10
    assert len(from_gz.train_labels) == 300 and len(from_gz.test_labels) == 100


def test_load_returns_the_written_arrays(raw_data_dir):
    dataset = data.load(raw_data_dir, log=lambda *a: None)
    images, labels = synthetic_digits(300, (28, 28), 10, seed=0)
    np.testing.assert_array_equal(dataset.train_images.numpy(), images)
    np.testing.assert_array_equal(dataset.train_labels.numpy(), labels)


def test_raw_file_is_preferred_over_gz(raw_data_dir):
    # A folder holding both variants reads the raw one; the .gz copy here is garbage and must not matter.
    for name in NAMES.values():
        (raw_data_dir / f"{name}.gz").write_bytes(b"\x1f\x8bnot really gzip")
    dataset = data.load(raw_data_dir, log=lambda *a: None)
    assert len(dataset.train_images) == 300


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
        data.load(folder, log=lambda *a: None)
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
    return blob[:middle] + bytes(b ^ 0xA5 for b in blob[middle:middle + 16]) + blob[middle + 16:]


def _bad_header_flags(blob: bytes) -> bytes:
    return blob[:2] + b"\x09" + blob[3:]  # compression method 9 does not exist


@pytest.mark.parametrize("damage", [_cut_gzip, _flip_crc, _flip_deflate, _bad_header_flags])
@pytest.mark.parametrize("key", ["train_images", "train_labels"])
def test_damaged_gzip_raises_data_error_naming_the_file(make_dataset, damage, key):
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    path = folder / f"{NAMES[key]}.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError) as caught:
        data.load(folder, log=lambda *a: None)
    assert str(path) in str(caught.value)


def test_read_bytes_of_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read") as caught:
        idx.read_bytes(tmp_path / "nope-idx1-ubyte")
    assert "nope-idx1-ubyte" in str(caught.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_data_error(raw_data_dir):
    path = raw_data_dir / NAMES["test_labels"]
    path.chmod(0)
    try:
        with pytest.raises(DataError, match="cannot read"):
            data.load(raw_data_dir, log=lambda *a: None)
    finally:
        path.chmod(0o644)


# --- files that do not belong together -------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_image_and_label_counts_must_match(make_dataset, split):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    labels_path = folder / NAMES[f"{split}_labels"]
    labels = idx.parse(idx.read_bytes(labels_path), 1, "labels")
    idx.write(labels_path, labels[:-1])
    with pytest.raises(DataError) as caught:
        data.load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert str(folder) in message
    assert f"{split} set has {len(labels)} images but {len(labels) - 1} labels" in message


def test_train_and_test_image_sizes_must_match(make_dataset):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    idx.write(folder / NAMES["test_images"], np.zeros((20, 12, 16), dtype=np.uint8))
    with pytest.raises(DataError, match="same image size") as caught:
        data.load(folder, log=lambda *a: None)
    assert str(folder) in str(caught.value)


def test_images_file_in_place_of_labels_is_refused(make_dataset):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    # A 1-d file of pixel values (as if images were flattened into the labels file): labels go up to 255.
    idx.write(folder / NAMES["train_labels"], np.full(40, 200, dtype=np.uint8))
    with pytest.raises(DataError, match="labels go up to 200"):
        data.load(folder, log=lambda *a: None)


def test_missing_file_in_named_folder_lists_it(make_dataset):
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    (folder / f"{NAMES['test_labels']}.gz").unlink()
    with pytest.raises(DataError) as caught:
        data.load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert NAMES["test_labels"] in message and NAMES["train_images"] not in message
    assert "--data-dir" in message


def test_named_folder_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="lacks"):
        data.load(tmp_path / "no-such-folder", log=lambda *a: None)


# --- MNIST verification ----------------------------------------------------------------------------

def test_custom_data_loads_unverified_and_says_so(data_dir):
    lines = []
    dataset = data.load(data_dir, log=lines.append)
    assert dataset.verified is False
    assert any("does not hold MNIST" in line and str(data_dir) in line for line in lines), lines
    assert dataset.source == f"folder {data_dir}"


def test_data_matching_the_published_sums_is_verified(data_dir, monkeypatch):
    monkeypatch.setattr(data, "MNIST_SHA256", uncompressed_sha256(data_dir))
    lines = []
    dataset = data.load(data_dir, log=lines.append)
    assert dataset.verified is True
    assert not any("does not hold MNIST" in line for line in lines)


def test_mnist_shaped_data_with_wrong_checksum_is_corrupt_small(make_dataset, monkeypatch):
    # Cheap stand-in for MNIST: declare the synthetic shapes to be MNIST's and corrupt one file.
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    sums = uncompressed_sha256(folder)
    monkeypatch.setattr(data, "MNIST_SHA256", sums)
    monkeypatch.setattr(data, "MNIST_SHAPES", {"train_images": (40, 28, 28), "train_labels": (40,),
                                               "test_images": (20, 28, 28), "test_labels": (20,)})
    assert data.load(folder, log=lambda *a: None).verified  # whole copy: fine
    path = folder / f"{NAMES['test_images']}.gz"
    images = idx.parse(idx.read_bytes(path), 3, str(path)).copy()
    images[3, 4, 5] ^= 1  # one pixel off by one
    idx.write(path, images)
    with pytest.raises(DataError) as caught:
        data.load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert "corrupt" in message and NAMES["test_images"] in message
    assert NAMES["train_images"] not in message  # only the bad file is named


def test_mnist_shaped_data_with_wrong_checksum_is_corrupt_full_size(tmp_path):
    # The real MNIST shapes (60000x28x28 and 10000x28x28), all zeros: the shape says MNIST, the sums say no.
    for key, shape in idx.MNIST_SHAPES.items():
        idx.write(tmp_path / NAMES[key], np.zeros(shape, dtype=np.uint8))
    with pytest.raises(DataError, match="MNIST's shape but not its sha256") as caught:
        data.load(tmp_path, log=lambda *a: None)
    assert "corrupt" in str(caught.value)
    assert str(tmp_path) in str(caught.value)
