"""Loading a data folder (digitlab.data.dataset): the four files as tensors, checked to belong together,
verified against MNIST's published sums; and the limits and validation split of prepare()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data import dataset, idx
from digitlab.errors import DataError
from helpers import NAMES, synthetic_digits, uncompressed_sha256


def test_gz_and_raw_folders_load_identically(data_dir, raw_data_dir):
    from_gz = dataset.load(data_dir, log=lambda *a: None)
    from_raw = dataset.load(raw_data_dir, log=lambda *a: None)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(from_gz, field), getattr(from_raw, field)), field
    assert from_gz.checksums == from_raw.checksums == uncompressed_sha256(raw_data_dir)
    assert from_gz.train_images.dtype == torch.uint8 and from_gz.train_labels.dtype == torch.int64
    assert from_gz.image_shape == (28, 28)
    assert from_gz.num_classes == 10
    assert len(from_gz.train_labels) == 300 and len(from_gz.test_labels) == 100


def test_load_returns_the_written_arrays(raw_data_dir):
    loaded = dataset.load(raw_data_dir, log=lambda *a: None)
    images, labels = synthetic_digits(300, (28, 28), 10, seed=0)
    np.testing.assert_array_equal(loaded.train_images.numpy(), images)
    np.testing.assert_array_equal(loaded.train_labels.numpy(), labels)


def test_raw_file_is_preferred_over_gz(raw_data_dir):
    # A folder holding both variants reads the raw one; the .gz copy here is garbage and must not matter.
    for name in NAMES.values():
        (raw_data_dir / f"{name}.gz").write_bytes(b"\x1f\x8bnot really gzip")
    loaded = dataset.load(raw_data_dir, log=lambda *a: None)
    assert len(loaded.train_images) == 300


# --- files that do not belong together -------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_image_and_label_counts_must_match(make_dataset, split):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    labels_path = folder / NAMES[f"{split}_labels"]
    labels = idx.parse(idx.read_bytes(labels_path), 1, "labels")
    idx.write(labels_path, labels[:-1])
    with pytest.raises(DataError) as caught:
        dataset.load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert str(folder) in message
    assert f"{split} set has {len(labels)} images but {len(labels) - 1} labels" in message


def test_train_and_test_image_sizes_must_match(make_dataset):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    idx.write(folder / NAMES["test_images"], np.zeros((20, 12, 16), dtype=np.uint8))
    with pytest.raises(DataError, match="same image size") as caught:
        dataset.load(folder, log=lambda *a: None)
    assert str(folder) in str(caught.value)


def test_images_file_in_place_of_labels_is_refused(make_dataset):
    folder = make_dataset(gz=False, n_train=40, n_test=20)
    # A 1-d file of pixel values (as if images were flattened into the labels file): labels go up to 255.
    idx.write(folder / NAMES["train_labels"], np.full(40, 200, dtype=np.uint8))
    with pytest.raises(DataError, match="labels go up to 200"):
        dataset.load(folder, log=lambda *a: None)


def test_missing_file_in_named_folder_lists_it(make_dataset):
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    (folder / f"{NAMES['test_labels']}.gz").unlink()
    with pytest.raises(DataError) as caught:
        dataset.load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert NAMES["test_labels"] in message and NAMES["train_images"] not in message
    assert "--data-dir" in message


def test_named_folder_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="lacks"):
        dataset.load(tmp_path / "no-such-folder", log=lambda *a: None)


# --- MNIST verification ----------------------------------------------------------------------------


def test_custom_data_loads_unverified_and_says_so(data_dir):
    lines = []
    loaded = dataset.load(data_dir, log=lines.append)
    assert loaded.verified is False
    assert any("does not hold MNIST" in line and str(data_dir) in line for line in lines), lines
    assert loaded.source == f"folder {data_dir}"


def test_data_matching_the_published_sums_is_verified(data_dir, monkeypatch):
    monkeypatch.setattr(dataset, "MNIST_SHA256", uncompressed_sha256(data_dir))
    lines = []
    loaded = dataset.load(data_dir, log=lines.append)
    assert loaded.verified is True
    assert not any("does not hold MNIST" in line for line in lines)


def test_mnist_shaped_data_with_wrong_checksum_is_corrupt_small(make_dataset, monkeypatch):
    # Cheap stand-in for MNIST: declare the synthetic shapes to be MNIST's and corrupt one file.
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    sums = uncompressed_sha256(folder)
    monkeypatch.setattr(dataset, "MNIST_SHA256", sums)
    monkeypatch.setattr(
        dataset,
        "MNIST_SHAPES",
        {"train_images": (40, 28, 28), "train_labels": (40,), "test_images": (20, 28, 28), "test_labels": (20,)},
    )
    assert dataset.load(folder, log=lambda *a: None).verified  # whole copy: fine
    path = folder / f"{NAMES['test_images']}.gz"
    images = idx.parse(idx.read_bytes(path), 3, str(path)).copy()
    images[3, 4, 5] ^= 1  # one pixel off by one
    idx.write(path, images)
    with pytest.raises(DataError) as caught:
        dataset.load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert "corrupt" in message and NAMES["test_images"] in message
    assert NAMES["train_images"] not in message  # only the bad file is named


def test_mnist_shaped_data_with_wrong_checksum_is_corrupt_full_size(tmp_path):
    # The real MNIST shapes (60000x28x28 and 10000x28x28), all zeros: the shape says MNIST, the sums say no.
    for key, shape in idx.MNIST_SHAPES.items():
        idx.write(tmp_path / NAMES[key], np.zeros(shape, dtype=np.uint8))
    with pytest.raises(DataError, match="MNIST's shape but not its sha256") as caught:
        dataset.load(tmp_path, log=lambda *a: None)
    assert "corrupt" in str(caught.value)
    assert str(tmp_path) in str(caught.value)


# --- limits and the validation split -------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits(session_data_dir):
    return dataset.load(session_data_dir, log=lambda *a: None)


def rows(images) -> set[bytes]:
    return {bytes(image.flatten().tolist()) for image in images}


def test_prepare_applies_the_limits_then_holds_out_validation(digits):
    prepared = dataset.prepare(digits, val_size=40, train_limit=200, test_limit=30, seed=7)
    assert len(prepared.train_images) == 160 and len(prepared.val_images) == 40
    assert len(prepared.test_images) == 30


def test_validation_split_partitions_the_limited_training_set(digits):
    prepared = dataset.prepare(digits, val_size=40, train_limit=200, test_limit=30, seed=7)
    assert rows(prepared.train_images) | rows(prepared.val_images) == rows(digits.train_images[:200])
    assert not rows(prepared.train_images) & rows(prepared.val_images)


def test_validation_split_depends_on_the_seed_alone(digits):
    prepared = dataset.prepare(digits, val_size=40, train_limit=200, test_limit=30, seed=7)
    again = dataset.prepare(digits, val_size=40, train_limit=200, test_limit=30, seed=7)
    assert torch.equal(again.val_labels, prepared.val_labels) and torch.equal(again.val_images, prepared.val_images)
    other = dataset.prepare(digits, val_size=40, train_limit=200, test_limit=30, seed=8)
    assert not torch.equal(other.val_images, prepared.val_images)


def test_no_validation_split_unless_asked(digits):
    assert dataset.prepare(digits).val_images is None


def test_validation_split_must_leave_training_data(digits):
    with pytest.raises(DataError, match="--val-size 300 leaves no training data"):
        dataset.prepare(digits, val_size=300)
