"""A person's samples folder (digitlab.store.samples): added, listed, loaded and removed atomically, bounded,
never written outside the folder, safe with concurrent writers."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from digitlab.store import samples
from digitlab.store.samples import NOT_A_DIGIT, SampleError, open_samples


def digit(value: int = 200) -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = value
    return image


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_added_samples_load_back_with_their_labels(tmp_path):
    folder = open_samples(tmp_path / "mine", create=True)
    first = folder.add("7", digit(200), jpeg(), source="drawing.png")
    second = folder.add("not-a-digit", digit(90))
    assert first["original"].endswith(".original.jpg") and "original" not in second
    images, labels, ids = open_samples(tmp_path / "mine").load()
    assert ids == [first["id"], second["id"]]
    assert labels.tolist() == [7, NOT_A_DIGIT]
    assert np.array_equal(images[0], digit(200)) and np.array_equal(images[1], digit(90))
    assert (tmp_path / "mine" / first["original"]).read_bytes() == jpeg()


def test_removed_sample_leaves_no_file(tmp_path):
    folder = open_samples(tmp_path, create=True)
    kept, gone = folder.add("1", digit()), folder.add("2", digit(), jpeg())
    folder.remove(gone["id"])
    assert [record["id"] for record in folder.records()] == [kept["id"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([samples.MARKER, f"{kept['id']}.json", kept["image"]])
    with pytest.raises(SampleError, match="holds no sample"):
        folder.remove(gone["id"])


@pytest.mark.parametrize("bad", ["../outside", "a" * 31, "A" * 32, "..", "0" * 32 + "/x"])
def test_ids_that_are_not_ids_are_refused_before_any_path_is_made(tmp_path, bad):
    (tmp_path / "outside.json").write_text("{}")
    folder = open_samples(tmp_path / "folder", create=True)
    with pytest.raises(SampleError, match="not a sample id"):
        folder.remove(bad)
    assert (tmp_path / "outside.json").exists()


@pytest.mark.parametrize("label", ["10", "x", "", "7.0", "-1"])
def test_unknown_labels_are_refused_and_nothing_is_written(tmp_path, label):
    folder = open_samples(tmp_path, create=True)
    with pytest.raises(SampleError, match="unknown label"):
        folder.add(label, digit())
    assert [p.name for p in tmp_path.iterdir()] == [samples.MARKER]


def test_a_folder_of_other_files_is_not_taken_for_a_samples_folder(tmp_path):
    (tmp_path / "thesis.txt").write_text("mine")
    with pytest.raises(SampleError, match="not a samples folder"):
        open_samples(tmp_path, create=True)
    with pytest.raises(SampleError, match="not a samples folder"):
        open_samples(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SampleError, match="is a file"):
        open_samples(tmp_path / "file", create=True)


def test_the_count_and_the_picture_are_bounded(tmp_path, monkeypatch):
    folder = open_samples(tmp_path, create=True)
    monkeypatch.setattr(samples, "MAX_SAMPLES", 2)
    folder.add("1", digit())
    folder.add("1", digit())
    with pytest.raises(SampleError, match="the limit"):
        folder.add("1", digit())
    monkeypatch.setattr(samples, "MAX_ORIGINAL_BYTES", 10)
    with pytest.raises(SampleError, match="over the limit"):
        folder.add("1", digit(), jpeg())
    with pytest.raises(SampleError, match="uint8"):
        folder.add("1", np.zeros((28, 27), dtype=np.uint8))
    assert len(folder.records()) == 2


def test_concurrent_writers_never_pass_the_limit(tmp_path, monkeypatch):
    folder = open_samples(tmp_path, create=True)
    monkeypatch.setattr(samples, "MAX_SAMPLES", 10)
    refused = []

    def add() -> None:
        try:
            folder.add("3", digit(), jpeg())
        except SampleError:
            refused.append(1)

    threads = [threading.Thread(target=add) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(folder.records()) == 10 and len(refused) == 6
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_damaged_record_is_named(tmp_path):
    folder = open_samples(tmp_path, create=True)
    record = folder.add("5", digit())
    (tmp_path / f"{record['id']}.json").write_text("{not json")
    with pytest.raises(SampleError, match=f"{record['id']}.json is not a sample's record"):
        folder.records()
