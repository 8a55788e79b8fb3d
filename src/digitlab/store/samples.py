"""A person's samples folder: pictures of their handwriting, each with its true label, to adapt a model to.

A sample is three files named by a random id: `<id>.png` (the 28x28 image the model saw, a light digit on
black), `<id>.original.<ext>` (the picture as it was sent, when there was one) and `<id>.json` (its record:
label, where it came from, when). The record is written last and removed first, so a sample exists exactly
when its record does: a crash or a full disk mid-way leaves at most stray image files, which no record names and
nothing reads. Every file is written atomically (store.files.atomic_write).

A folder is a samples folder when it holds MARKER; anything else that exists is refused rather than written
into. Writes are bounded (MAX_SAMPLES per folder, MAX_ORIGINAL_BYTES per picture), never leave the folder (ids
are checked to be what add() makes), and are safe with concurrent writers: the count is checked under a
lock on the marker file.

Holds the limits (MAX_SAMPLES, MAX_ORIGINAL_BYTES), NoSuchSample, SamplesFolder (add, remove, records, load)
and open_samples; the folder's names and labels, and reading it, are data.samples_files' (a samples folder is
also a dataset).
"""

from __future__ import annotations

import io
import secrets
import time
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.data.samples_files import (  # noqa: F401 - the folder's names and labels, re-exported for callers
    IMAGE_SHAPE,
    LABELS,
    MARKER,
    NOT_A_DIGIT,
    NOT_A_DIGIT_LABEL,
    SAMPLE_ID,
    SampleError,
    label_index,
    read_record,
    read_samples,
    record_paths,
)
from digitlab.store.files import atomic_write, remove_temporaries, write_json
from digitlab.store.lock import waiting

FORMAT = 1
MAX_SAMPLES = 10_000  # per folder: a person's corrections, not a dataset
MAX_ORIGINAL_BYTES = 5 * 1024 * 1024  # the largest original picture kept (the server's upload limit)


class NoSuchSample(SampleError):
    """A sample id the folder does not hold (HTTP 404)."""

    http_status = 404


class SamplesFolder:
    """An existing samples folder (made by open_samples)."""

    def __init__(self, path: Path):
        self.path = path

    def add(self, label: str, image: np.ndarray, original: bytes | None = None, source: str = "") -> dict:
        """Store one sample; return its record. `image`: the uint8 28x28 image the model saw; `original`: the
        picture's file as sent (kept as it is, up to MAX_ORIGINAL_BYTES)."""
        label_index(label)
        image = np.asarray(image)
        if image.shape != IMAGE_SHAPE or image.dtype != np.uint8:
            raise SampleError(f"a sample's image is uint8 {IMAGE_SHAPE}, got {image.dtype} {image.shape}")
        if original is not None and len(original) > MAX_ORIGINAL_BYTES:
            raise SampleError(f"the picture is {len(original):,} bytes, over the limit of {MAX_ORIGINAL_BYTES:,}")
        suffix = _picture_suffix(original) if original is not None else None
        with waiting(self.path / MARKER):
            count = len(record_paths(self.path))
            if count >= MAX_SAMPLES:
                raise SampleError(
                    f"{self.path} holds {count:,} samples, the limit; remove some (digitlab samples remove) or "
                    f"start another folder"
                )
            sample_id = secrets.token_hex(16)
            record = {"id": sample_id, "label": label, "source": source[:200], "created": time.time()}
            record["image"] = f"{sample_id}.png"
            if suffix:
                record["original"] = f"{sample_id}.original{suffix}"
            written = []
            try:
                written.append(self.path / record["image"])
                atomic_write(written[-1], _png(image))
                if suffix:
                    written.append(self.path / record["original"])
                    atomic_write(written[-1], original)
                write_json(self.path / f"{sample_id}.json", record)  # last: the sample exists from here on
            except OSError as error:
                for path in written:
                    path.unlink(missing_ok=True)
                remove_temporaries(self.path)
                raise SampleError(f"cannot write into {self.path}: {error.strerror or error}") from None
        return record

    def remove(self, sample_id: str) -> dict:
        """Delete a sample (its record first, so it is gone at once); return its record."""
        if not SAMPLE_ID.fullmatch(sample_id):
            raise SampleError(f"{sample_id!r} is not a sample id (32 hexadecimal digits, as 'digitlab samples list')")
        path = self.path / f"{sample_id}.json"
        if not path.is_file():
            raise NoSuchSample(f"{self.path} holds no sample {sample_id}; 'digitlab samples list' shows them")
        record = read_record(path)
        path.unlink()
        for name in (record.get("image"), record.get("original")):
            if name and SAMPLE_ID.fullmatch(Path(name).name[:32]):
                (self.path / Path(name).name).unlink(missing_ok=True)
        return record

    def records(self) -> list[dict]:
        """Every sample's record, oldest first."""
        return sorted((read_record(path) for path in record_paths(self.path)), key=lambda r: (r["created"], r["id"]))

    def load(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(images uint8 (N, 28, 28), labels int64 (N,) with NOT_A_DIGIT for non-digits, ids), oldest first."""
        records, images, labels = read_samples(self.path)
        return images, labels, [record["id"] for record in records]


def open_samples(path: str | Path, create: bool = False) -> SamplesFolder:
    """The samples folder at `path`. With `create`, a missing or empty folder becomes one; a folder holding other
    things (no MARKER) is refused, so that samples are never mixed into someone else's files."""
    path = Path(path)
    if (path / MARKER).is_file():
        return SamplesFolder(path)
    if path.exists() and not path.is_dir():
        raise SampleError(f"{path} is a file, not a samples folder; pass a folder")
    if path.is_dir() and any(path.iterdir()):
        raise SampleError(
            f"{path} is not a samples folder (no {MARKER}); pass a folder made by 'digitlab samples add' or "
            f"'digitlab serve --samples', or a new or empty one"
        )
    if not create:
        raise SampleError(f"{path} is not a samples folder (no {MARKER}); add samples with 'digitlab samples add'")
    try:
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / MARKER, {"format": FORMAT, "labels": list(LABELS)})
    except OSError as error:
        raise SampleError(f"cannot make the samples folder {path}: {error.strerror or error}") from None
    return SamplesFolder(path)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _picture_suffix(data: bytes) -> str:
    """The file suffix for a picture's bytes, from its format (a name a user sent is never used for a path)."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            kind = (picture.format or "").lower()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise SampleError("the picture is not an image Pillow can read; send a PNG or JPEG") from None
    return {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "bmp": ".bmp", "webp": ".webp", "tiff": ".tif"}.get(
        kind, ".img"
    )
