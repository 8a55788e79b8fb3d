"""Reading a person's samples folder: the files digitlab.store.samples writes (a marker, and per sample a 28x28 PNG
and a JSON record), as images and labels; a samples folder is also a dataset (data.dataset.load takes one).

Holds the folder's names and labels (MARKER, SAMPLE_ID, LABELS, NOT_A_DIGIT_LABEL, IMAGE_SHAPE, label_index),
SampleError, is_samples_folder, record_paths, read_record and read_samples.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.errors import DataError

MARKER = "digitlab-samples.json"
SAMPLE_ID = re.compile(r"[0-9a-f]{32}")
NOT_A_DIGIT_LABEL = "not-a-digit"  # a correction saying the picture holds no digit
LABELS = (*(str(digit) for digit in range(10)), NOT_A_DIGIT_LABEL)
# The label of an example that is not a digit (a "not-a-digit" sample, or --negatives): trained towards the uniform
# distribution over the classes (outlier exposure), never a class of its own; only a training split holds one.
# data.dataset (which reads samples folders) takes it from here.
NOT_A_DIGIT = -1
IMAGE_SHAPE = (28, 28)


class SampleError(DataError):
    """A sample or a samples folder that cannot be used (exit 2, HTTP 400)."""


def label_index(label: str) -> int:
    """The class index of a label ("0".."9"; "not-a-digit" is NOT_A_DIGIT); SampleError for anything else."""
    if label not in LABELS:
        raise SampleError(f"unknown label {label!r}; a sample's label is a digit 0-9 or {NOT_A_DIGIT_LABEL!r}")
    return NOT_A_DIGIT if label == NOT_A_DIGIT_LABEL else int(label)


def is_samples_folder(path: str | Path | None) -> bool:
    return path is not None and (Path(path) / MARKER).is_file()


def record_paths(folder: Path) -> list[Path]:
    return [path for path in Path(folder).glob("*.json") if SAMPLE_ID.fullmatch(path.stem)]


def read_record(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
        label_index(record["label"])
        record["id"], record["image"], record["created"]  # noqa: B018 - every record has them
        return record
    except (OSError, KeyError, TypeError, ValueError, DataError):
        raise SampleError(f"{path} is not a sample's record; remove it") from None


def read_samples(folder: str | Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(records oldest first, images uint8 (N, 28, 28), labels int64 (N,) with NOT_A_DIGIT for non-digits)."""
    folder = Path(folder)
    records = sorted((read_record(p) for p in record_paths(folder)), key=lambda r: (r["created"], r["id"]))
    images = np.zeros((len(records), *IMAGE_SHAPE), dtype=np.uint8)
    for row, record in enumerate(records):
        path = folder / Path(record["image"]).name
        try:
            with Image.open(path) as picture:
                images[row] = np.asarray(picture.convert("L"))
        except (OSError, ValueError) as error:
            raise SampleError(f"{path}: sample {record['id']} is damaged ({error}); remove it") from None
    labels = np.array([label_index(record["label"]) for record in records], dtype=np.int64)
    return records, images, labels
