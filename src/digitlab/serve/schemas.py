"""What digitlab serve's endpoints answer, as pydantic models for the OpenAPI page, and the error answers and
upload body they document.

Holds Guess, Prediction, PredictResponse (POST /predict), ReadDigit, Reading, ReadResponse (POST /read), Health,
ErrorBody, ERRORS and UPLOAD_BODY.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from digitlab.serve.uploads import MAX_FILES, MAX_UPLOAD_BYTES

NOT_A_DIGIT = "whether the answer is 'not a digit' (then `digit` is only the model's best guess)"
REASON = "why it is not a digit: 'low confidence', 'several digits (N)', 'no single mark', ...; null for a digit"


class Guess(BaseModel):
    digit: int = Field(description="the class index")
    label: str = Field(description="the class's name (the digit itself for MNIST)")
    probability: float = Field(description="the model's calibrated probability for this class, 0 to 1")


class Answer(Guess):
    top3: list[Guess] = Field(description="the three most probable classes, most probable first")
    not_a_digit: bool = Field(description=NOT_A_DIGIT)
    reason: str | None = Field(description=REASON)
    probabilities: list[float] = Field(description="every class's calibrated probability, in class order")
    image: str = Field(description="the 28x28 image the model saw (white digit on black), as a PNG data URL")


class Prediction(Answer):
    name: str = Field(description="the uploaded file's name")


class PredictResponse(BaseModel):
    model: str = Field(description="where the model came from (its run directory or file, or the default model)")
    classes: list[str] = Field(description="the class labels, in class order")
    predictions: list[Prediction] = Field(description="one per uploaded image, in upload order")


class ReadDigit(Answer):
    box: list[int] = Field(description="[left, top, right, bottom] of the digit's ink in the image's pixels")


class Reading(BaseModel):
    name: str = Field(description="the uploaded file's name")
    number: str = Field(description="the digits read, left to right; '?' where a mark is not a digit")
    not_a_digit: bool = Field(description="whether the picture holds no digit that could be read")
    reason: str | None = Field(description="why nothing could be read; null when digits were")
    digits: list[ReadDigit] = Field(description="each digit's box and answer, left to right")


class ReadResponse(BaseModel):
    model: str = Field(description="where the model came from")
    classes: list[str] = Field(description="the class labels, in class order")
    readings: list[Reading] = Field(description="one per uploaded image, in upload order")


class Health(BaseModel):
    status: str = Field(description='"ok" while the server answers')
    model: str = Field(description="where the model came from")
    samples: str | None = Field(description="the samples folder corrections are kept in (--samples), or null")


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
                        "description": f"several images, answered as one batch (at most {MAX_FILES})",
                    },
                },
            }
        }
    },
}
