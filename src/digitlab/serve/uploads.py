"""Reading the images a request to digitlab serve uploads: a multipart body read in chunks and refused (413) as
soon as it passes the upload limit, before anything is parsed, so a client cannot make the server hold an
unbounded body in memory; each part checked to be an image.

Holds the limits (MAX_UPLOAD_BYTES, MAX_FILES), the errors a bad upload raises (UploadError, UploadTooLarge,
UnsupportedType; each a DigitlabError with its HTTP status), the bounded form (bounded_form, image_part) and the
images of a request (read_uploads).
"""

from __future__ import annotations

import contextlib

from fastapi import Request
from starlette.datastructures import UploadFile

from digitlab.errors import DigitlabError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # the whole request body, all files of a batch together
MAX_FILES = 64  # images in one request
# A part's Content-Type that may hold an image: browsers and curl send image/...; curl sends octet-stream
# for an unknown extension, and a part may have no type at all. Anything else is refused with 415.
UNTYPED_PARTS = ("", "application/octet-stream")


class UploadError(DigitlabError):
    """A request that cannot be used (400 unless a subclass says otherwise)."""


class UploadTooLarge(UploadError):
    http_status = 413


class UnsupportedType(UploadError):
    http_status = 415


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 by its declared length or, while reading, by the bytes received."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise UploadError(f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > limit:
            raise UploadTooLarge(f"the upload is {int(declared)} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(f"the upload is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.asynccontextmanager
async def bounded_form(request: Request, limit: int):
    """The multipart form of a request whose body was read (and bounded) first; closed on leaving."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise UnsupportedType(
            f"the request's content type is {content_type or 'missing'}; send multipart/form-data with the "
            f"image in the field 'file' (curl -F file=@digit.png)"
        )
    body = await read_body(request, limit)
    sent = False

    async def replay() -> dict:  # the body, already read and measured, for the form parser
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=MAX_FILES, max_fields=MAX_FILES)
    try:
        yield form
    finally:
        await form.close()


async def image_part(part, field: str) -> tuple[str, bytes]:
    """(file name, bytes) of a form part that must be an uploaded image."""
    if not isinstance(part, UploadFile):
        raise UploadError(f"the field '{field}' must be a file upload, not text")
    name = part.filename or "upload"
    part_type = (part.content_type or "").split(";")[0].strip().lower()
    if not (part_type.startswith("image/") or part_type in UNTYPED_PARTS):
        raise UnsupportedType(f"{name}: content type {part_type} is not an image; send a PNG or JPEG")
    return name, await part.read()


async def read_uploads(request: Request, limit: int) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each image in a multipart request's `file` and `files` fields."""
    async with bounded_form(request, limit) as form:
        parts = [("file", part) for part in form.getlist("file")] + [("files", part) for part in form.getlist("files")]
        if not parts:
            raise UploadError("no image in the request: send it in the multipart field 'file' (or several in 'files')")
        return [await image_part(part, field) for field, part in parts]
