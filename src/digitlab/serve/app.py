"""The web application behind `digitlab serve`: POST /predict (one digit per image), POST /read (a number per
image), GET /health, the draw-a-number page at /, and with --samples the corrections kept as a person's samples
(POST, GET /samples, DELETE /samples/{id}: serve.corrections).

One classifier is loaded before the app is made and shared by every request. Uploads are read by
serve.uploads (bounded before anything is parsed); decoding, preprocessing and the model run in FastAPI's
threadpool, off the event loop, so /health answers while images are being classified. The answers' shapes are
serve.schemas'.

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
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from digitlab import __version__
from digitlab.errors import ConfigError, DigitlabError
from digitlab.inference.decode import decode
from digitlab.inference.mnist_like import IMAGE_SHAPE
from digitlab.inference.read import read_images
from digitlab.inference.recognise import recognise_images
from digitlab.serve.corrections import add_sample, list_samples, remove_sample
from digitlab.serve.schemas import ERRORS, UPLOAD_BODY, ErrorBody, Health, PredictResponse, ReadResponse
from digitlab.serve.uploads import MAX_UPLOAD_BYTES, read_uploads
from digitlab.store.samples import SamplesFolder

STATIC = Path(__file__).resolve().parent / "static"


def create_app(classifier, max_upload_bytes: int = MAX_UPLOAD_BYTES, samples: SamplesFolder | None = None) -> FastAPI:
    """The application serving `classifier` (from digitlab.inference.classifier.open_classifier); with `samples`
    (store.samples.open_samples), corrections made on the page are kept there."""
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
        description=f"Reads handwritten digits and numbers with {classifier.source}. Draw one at /.",
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
        "and classified; the answer has the same fields as `digitlab predict --json` per image (a picture that "
        "is not one digit is answered 'not a digit' with the reason), every class's calibrated probability, "
        "and the 28x28 image the model saw.",
    )
    async def predict(request: Request) -> dict:
        uploads = await read_uploads(request, max_upload_bytes)
        predictions = await run_in_threadpool(_predict, classifier, uploads)
        return {"model": classifier.source, "classes": classes, "predictions": predictions}

    @app.post(
        "/read",
        response_model=ReadResponse,
        responses=ERRORS,
        openapi_extra={"requestBody": UPLOAD_BODY},
        summary="Read the number (one line of digits) in one image or in a batch",
        description="Send one image as the multipart field `file`, or several as `files`. The marks on each are "
        "grouped into digits left to right (touching neighbours split), each made MNIST-like and classified; "
        "the answer has the same fields as `digitlab read --json` per image: the number, and each digit's box, "
        "calibrated probabilities, 'not a digit' verdict and the 28x28 image the model saw.",
    )
    async def read(request: Request) -> dict:
        uploads = await read_uploads(request, max_upload_bytes)
        readings = await run_in_threadpool(_read, classifier, uploads)
        return {"model": classifier.source, "classes": classes, "readings": readings}

    @app.get("/health", response_model=Health, summary="Whether the server answers, its model, and its samples")
    async def health() -> dict:
        return {"status": "ok", "model": classifier.source, "samples": str(samples.path) if samples else None}

    @app.post(
        "/samples",
        responses=ERRORS | {409: {"model": ErrorBody, "description": "the server was started without --samples"}},
        summary="Keep a correction as a sample of the person's writing",
        description="Multipart fields: `label` (0-9 or not-a-digit), `seen` (the 28x28 PNG the model saw, the "
        "answer's `image`) and optionally `file` (the picture it came from). Answers the sample's record.",
    )
    async def add(request: Request) -> dict:
        return await add_sample(request, samples, max_upload_bytes)

    @app.get("/samples", summary="The samples kept so far, and their count per label")
    async def listing() -> dict:
        return await list_samples(samples)

    @app.delete("/samples/{sample_id}", summary="Remove a sample", responses=ERRORS)
    async def remove(sample_id: str) -> dict:
        return await remove_sample(samples, sample_id)

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


def _predict(classifier, uploads: list[tuple[str, bytes]]) -> list[dict]:
    """Decode (a large JPEG drafted, as predict does), prepare and classify the uploads as one batch (runs in the
    threadpool)."""
    pictures = [(name, decode(data, name, draft=True)) for name, data in uploads]
    answers = recognise_images(classifier, pictures)
    return [{"name": name} | _shown(answer) for (name, _), answer in zip(pictures, answers)]


def _read(classifier, uploads: list[tuple[str, bytes]]) -> list[dict]:
    """Decode the uploads and read the number in each, all digits classified as one batch (in the threadpool)."""
    pictures = [(name, decode(data, name)) for name, data in uploads]
    readings = read_images(classifier, pictures)
    return [
        {"name": name} | reading | {"digits": [_shown(digit) for digit in reading["digits"]]}
        for (name, _), reading in zip(pictures, readings)
    ]


def _shown(answer: dict) -> dict:
    """An answer with its probabilities as plain floats and its 28x28 image as a PNG data URL."""
    image, probabilities = answer["image"], answer["probabilities"]
    return answer | {"probabilities": [float(p) for p in probabilities], "image": _png_data_url(image)}


def _png_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
