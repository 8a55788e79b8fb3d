"""Corrections made on the page, kept as a person's samples (store.samples) when the server was started with
`digitlab serve --samples DIR`: POST /samples stores one, GET /samples lists them, DELETE /samples/{id} removes one.

A correction carries its label ("0".."9" or "not-a-digit"), the 28x28 image the model saw (`seen`, as the page got
it in the answer) and, optionally, the picture it came from (`file`). Everything is checked before anything is
written; the folder's own limits and atomic writes (store.samples) do the rest.

Holds NoSamples (the server keeps none: 409), add_sample, list_samples and remove_sample.
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from digitlab.errors import DigitlabError
from digitlab.serve.uploads import UploadError, bounded_form, image_part
from digitlab.store.samples import IMAGE_SHAPE, LABELS, SamplesFolder


class NoSamples(DigitlabError):
    """A samples request to a server started without --samples."""

    http_status = 409


def _folder(samples: SamplesFolder | None) -> SamplesFolder:
    if samples is None:
        raise NoSamples(
            "this server keeps no samples; start it with 'digitlab serve --samples DIR' to keep corrections"
        )
    return samples


async def add_sample(request: Request, samples: SamplesFolder | None, limit: int) -> dict:
    """Store the correction a POST /samples carries; its record."""
    folder = _folder(samples)
    async with bounded_form(request, limit) as form:
        label = form.get("label")
        if not isinstance(label, str) or label not in LABELS:
            raise UploadError(f"the field 'label' must be one of {', '.join(LABELS)}; got {label!r}")
        if form.get("seen") is None:
            raise UploadError("no 'seen' image: send the 28x28 image the model saw (the answer's 'image') as 'seen'")
        _, seen = await image_part(form.get("seen"), "seen")
        original = await image_part(form.get("file"), "file") if form.get("file") is not None else None
    image = _seen_image(seen)
    name, data = original if original is not None else ("", None)
    return await run_in_threadpool(folder.add, label, image, data, name)


async def list_samples(samples: SamplesFolder | None) -> dict:
    """The records and the count per label (read in the threadpool: a folder may hold thousands)."""
    records = await run_in_threadpool(_folder(samples).records)
    return {"folder": str(samples.path), "counts": dict(Counter(r["label"] for r in records)), "samples": records}


async def remove_sample(samples: SamplesFolder | None, sample_id: str) -> dict:
    return await run_in_threadpool(_folder(samples).remove, sample_id)


def _seen_image(data: bytes) -> np.ndarray:
    """The 28x28 image the model saw, from its PNG: uint8 grey; UploadError for anything else (its size is read
    from the header, before any pixel is decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if picture.size != IMAGE_SHAPE[::-1]:
                raise UploadError(f"'seen' is {picture.size[0]}x{picture.size[1]} pixels; it must be the 28x28 image")
            picture.load()
            return np.asarray(picture.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise UploadError("'seen' is not an image; send the answer's 28x28 PNG") from None
