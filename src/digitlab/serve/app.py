"""The web application behind `digitlab serve`: POST /predict, GET /health, the draw-a-digit page at /.

One classifier is loaded before the app is made and shared by every request. A request's body is read in
chunks and refused (413) as soon as it passes the upload limit, before anything is parsed, so a client
cannot make the server hold an unbounded body in memory. Decoding, preprocessing and the model run in
FastAPI's threadpool, off the event loop, so /health answers while images are being classified.

Every error a client can cause (a wrong content type, an empty, truncated or undecodable file, a
decompression bomb, a blank drawing) is a DigitlabError and answers its `http_status` with the JSON body
{"error": "<one line naming the file and the problem>"}, never a 500.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitlab import __version__
from digitlab.errors import ConfigError, DigitlabError
from digitlab.inference.decode import decode
from digitlab.inference.mnist_like import IMAGE_SHAPE, to_mnist
from digitlab.inference.recognise import describe

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # the whole request body, all files of a batch together
MAX_FILES = 64  # images in one request
# A part's Content-Type that may hold an image: browsers and curl send image/...; curl sends octet-stream
# for an unknown extension, and a part may have no type at all. Anything else is refused with 415.
UNTYPED_PARTS = ("", "application/octet-stream")


class UploadError(DigitlabError):
    """A request to /predict that cannot be used (400 unless a subclass says otherwise)."""


class UploadTooLarge(UploadError):
    http_status = 413


class UnsupportedType(UploadError):
    http_status = 415


class Guess(BaseModel):
    digit: int = Field(description="the class index")
    label: str = Field(description="the class's name (the digit itself for MNIST)")
    probability: float = Field(description="the model's probability for this class, 0 to 1")


class Prediction(Guess):
    name: str = Field(description="the uploaded file's name")
    top3: list[Guess] = Field(description="the three most probable classes, most probable first")
    probabilities: list[float] = Field(description="every class's probability, in class order")
    image: str = Field(description="the 28x28 image the model saw (white digit on black), as a PNG data URL")


class PredictResponse(BaseModel):
    model: str = Field(description="where the model came from (its run directory or file, or the default model)")
    classes: list[str] = Field(description="the class labels, in class order")
    predictions: list[Prediction] = Field(description="one per uploaded image, in upload order")


class Health(BaseModel):
    status: str = Field(description='"ok" while the server answers')
    model: str = Field(description="where the model came from")


class ErrorBody(BaseModel):
    error: str = Field(description="one line: what was wrong with the request, naming the file")


ERRORS = {
    400: {"model": ErrorBody, "description": "no image, a malformed request, or a file that is not a usable image"},
    413: {"model": ErrorBody, "description": f"a request body over {MAX_UPLOAD_BYTES} bytes, or an image too large"},
    415: {"model": ErrorBody, "description": "not a multipart/form-data request, or a file type that is no image"},
}
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "one image (PNG, JPEG, ...)"},
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": f"several images, classified as one batch (at most {MAX_FILES})",
                    },
                },
            }
        }
    },
}


def create_app(classifier, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The application serving `classifier` (from digitlab.inference.classifier.open_classifier)."""
    shape = tuple(classifier.image_shape)
    if shape != IMAGE_SHAPE:
        raise ConfigError(
            f"{classifier.source} takes {shape[0]}x{shape[1]} images, but the server prepares pictures as "
            f"28x28 MNIST digits; serve a model trained on 28x28 images"
        )
    classes = _class_labels(classifier)
    app = FastAPI(
        title="digitlab",
        version=__version__,
        description=f"Recognises handwritten digits with {classifier.source}. Draw one at /.",
    )

    @app.exception_handler(DigitlabError)
    async def digitlab_error(request: Request, error: DigitlabError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.http_status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": str(error.errors())}, status_code=422)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=ERRORS,
        openapi_extra={"requestBody": UPLOAD_BODY},
        summary="Recognise the digit in one image or in a batch",
        description="Send one image as the multipart field `file`, or several as `files`. Each is decoded, "
        "turned into a 28x28 MNIST-style digit (ink detected as dark or light, cropped, centred by mass) "
        "and classified; the answer has the same fields as `digitlab predict --json` per image, every "
        "class's probability, and the 28x28 image the model saw.",
    )
    async def predict(request: Request) -> dict:
        uploads = await _read_uploads(request, max_upload_bytes)
        predictions = await run_in_threadpool(_classify, classifier, uploads)
        return {"model": classifier.source, "classes": classes, "predictions": predictions}

    @app.get("/health", response_model=Health, summary="Whether the server answers, and its model")
    async def health() -> dict:
        return {"status": "ok", "model": classifier.source}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _class_labels(classifier) -> list[str]:
    names = classifier.class_names
    if names:
        return [str(name) for name in names]
    count = classifier.probabilities(np.zeros((1, *IMAGE_SHAPE), dtype=np.uint8)).shape[1]
    return [str(index) for index in range(count)]


async def _read_body(request: Request, limit: int) -> bytes:
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


async def _read_uploads(request: Request, limit: int) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each image in a multipart request's `file` and `files` fields."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise UnsupportedType(
            f"the request's content type is {content_type or 'missing'}; send multipart/form-data with the "
            f"image in the field 'file' (curl -F file=@digit.png)"
        )
    body = await _read_body(request, limit)
    sent = False

    async def replay() -> dict:  # the body, already read and measured, for the form parser
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=MAX_FILES, max_fields=MAX_FILES)
    try:
        parts = form.getlist("file") + form.getlist("files")
        if not parts:
            raise UploadError("no image in the request: send it in the multipart field 'file' (or several in 'files')")
        uploads = []
        for part in parts:
            if not isinstance(part, UploadFile):
                raise UploadError("the fields 'file' and 'files' must be file uploads, not text")
            name = part.filename or "upload"
            part_type = (part.content_type or "").split(";")[0].strip().lower()
            if not (part_type.startswith("image/") or part_type in UNTYPED_PARTS):
                raise UnsupportedType(f"{name}: content type {part_type} is not an image; send a PNG or JPEG")
            uploads.append((name, await part.read()))
        return uploads
    finally:
        await form.close()


def _classify(classifier, uploads: list[tuple[str, bytes]]) -> list[dict]:
    """Decode, prepare and classify the uploads as one batch (runs in the threadpool)."""
    images = np.stack([to_mnist(decode(data, name), name) for name, data in uploads])
    probabilities = classifier.probabilities(images)
    results = describe(probabilities, classifier.class_names)
    return [
        result | {"name": name, "probabilities": [float(p) for p in row], "image": _png_data_url(image)}
        for (name, _), image, row, result in zip(uploads, images, probabilities, results)
    ]


def _png_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
