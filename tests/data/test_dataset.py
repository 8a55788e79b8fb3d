"""Loading a data folder (digitlab.data.dataset): the four files as tensors, checked to belong together,
identified as a known dataset by its published checksums or taken as custom data; and the limits and
validation split of prepare()."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from digitlab.data import dataset, idx, known
from digitlab.errors import DataError
from helpers import NAMES, synthetic_digits, uncompressed_sha256, write_dataset


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


# --- known datasets and custom data -----------------------------------------------------------------


def as_known(monkeypatch, name: str, folder, by: str = "sha256") -> known.KnownDataset:
    """Declare the synthetic files in `folder` to be the known dataset `name`, by sha256 or by .gz md5."""
    sums = uncompressed_sha256(folder) if by == "sha256" else {}
    md5s = (
        {}
        if by == "sha256"
        else {n: hashlib.md5((folder / f"{n}.gz").read_bytes()).hexdigest() for n in NAMES.values()}
    )
    fake = dataclasses.replace(known.KNOWN[name], sha256=sums, gzip_md5=md5s)
    monkeypatch.setitem(known.KNOWN, name, fake)
    return fake


def flip_a_pixel(folder) -> str:
    path = next(folder.glob(f"{NAMES['test_images']}*"))
    images = idx.parse(idx.read_bytes(path), 3, str(path)).copy()
    images[3, 4, 5] ^= 1  # one pixel off by one
    idx.write(path, images)
    return NAMES["test_images"]


def test_custom_data_loads_unverified_and_says_so(data_dir):
    lines = []
    loaded = dataset.load(data_dir, log=lines.append)
    assert loaded.verified is False and loaded.name == "custom" and loaded.class_names is None
    assert any("unverified" in line and "custom" in line and str(data_dir) in line for line in lines), lines
    assert loaded.source == f"folder {data_dir}"


def test_data_matching_mnist_sha256_is_mnist(data_dir, monkeypatch):
    as_known(monkeypatch, "mnist", data_dir)
    lines = []
    loaded = dataset.load(data_dir, log=lines.append)
    assert loaded.verified is True and loaded.name == "mnist"
    assert loaded.class_names == tuple("0123456789")
    assert lines == []  # MNIST is what digitlab expects: nothing to note


def test_a_known_non_mnist_set_is_identified_by_its_published_gz_md5(data_dir, monkeypatch):
    as_known(monkeypatch, "fashion-mnist", data_dir, by="md5")
    lines = []
    loaded = dataset.load(data_dir, log=lines.append)
    assert loaded.name == "fashion-mnist" and loaded.verified
    assert loaded.class_names[0] == "T-shirt/top" and loaded.class_names[9] == "Ankle boot"
    assert any("holds Fashion-MNIST, verified" in line for line in lines), lines


def test_the_same_files_decompressed_are_custom(raw_data_dir, data_dir, monkeypatch):
    as_known(monkeypatch, "fashion-mnist", data_dir, by="md5")  # only the .gz files are published
    assert dataset.load(raw_data_dir, log=lambda *a: None).name == "custom"


def test_an_unknown_mnist_shaped_set_is_custom(tmp_path):
    # The real MNIST shapes (60000x28x28 and 10000x28x28), all zeros: a lab's own drop-in trains as custom.
    for key, shape in idx.MNIST_SHAPES.items():
        idx.write(tmp_path / NAMES[key], np.zeros(shape, dtype=np.uint8))
    loaded = dataset.load(tmp_path, log=lambda *a: None)
    assert loaded.name == "custom" and loaded.image_shape == (28, 28)


def test_a_known_set_with_one_changed_file_is_refused_as_corrupt(make_dataset, monkeypatch):
    folder = make_dataset(gz=True, n_train=40, n_test=20)
    as_known(monkeypatch, "mnist", folder)
    assert dataset.load(folder, log=lambda *a: None).name == "mnist"  # whole copy: fine
    changed = flip_a_pixel(folder)
    with pytest.raises(DataError) as caught:
        dataset.load(folder, log=lambda *a: None)
    message = str(caught.value)
    assert "corrupt" in message and "MNIST" in message and "--dataset custom" in message
    assert str(folder) in message
    # The user may still take the files as they are.
    assert dataset.load(folder, log=lambda *a: None, expect="custom").name == "custom"
    assert changed


def test_dataset_mnist_refuses_other_files_naming_them(data_dir):
    with pytest.raises(DataError) as caught:
        dataset.load(data_dir, log=lambda *a: None, expect="mnist")
    message = str(caught.value)
    assert "MNIST is required" in message and all(name in message for name in NAMES.values())


def test_dataset_names_another_known_set_when_it_finds_one(data_dir, monkeypatch):
    as_known(monkeypatch, "kmnist", data_dir, by="md5")
    with pytest.raises(DataError, match="are KMNIST"):
        dataset.load(data_dir, log=lambda *a: None, expect="mnist")


def test_the_cache_with_one_flipped_byte_is_still_refused(cache_folder, monkeypatch):
    write_dataset(cache_folder, gz=False, n_train=40, n_test=20)
    as_known(monkeypatch, "mnist", cache_folder)
    assert dataset.load(log=lambda *a: None).name == "mnist"
    changed = flip_a_pixel(cache_folder)
    with pytest.raises(DataError) as caught:
        dataset.load(log=lambda *a: None)
    message = str(caught.value)
    assert changed in message and "MNIST is required" in message and "delete the cache folder" in message
    # --dataset custom does not loosen the cache: it holds what digitlab fetched, which must be MNIST.
    with pytest.raises(DataError):
        dataset.load(log=lambda *a: None, expect="custom")


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


@pytest.mark.parametrize("expect", ["fashion-mnist", "kmnist", "custom"])
def test_another_dataset_than_mnist_needs_a_folder(expect, cache_folder):
    # digitlab fetches only MNIST: asking for another set without --data-dir fails before any fetch.
    with pytest.raises(DataError, match="--data-dir"):
        dataset.load(log=pytest.fail, expect=expect)
    assert not cache_folder.exists()
