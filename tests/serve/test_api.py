"""The REST API of `digitlab serve` (digitlab.serve.app) through FastAPI's TestClient, with the default model.

Every bad upload must answer a 4xx with {"error": "..."} and leave the server answering; a good one the
fields of `digitlab predict --json`, every class's probability and the 28x28 image the model saw.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from digitlab.inference.classifier import open_classifier
from digitlab.inference.mnist_like import IMAGE_SHAPE
from digitlab.serve.app import MAX_UPLOAD_BYTES, create_app
from drawings import bomb


@pytest.fixture(scope="module")
def classifier():
    return open_classifier(None)


@pytest.fixture(scope="module")
def client(classifier):
    with TestClient(create_app(classifier)) as client:
        yield client


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawn_digit(strokes: list[list[tuple[int, int]]], size: int = 200) -> bytes:
    """A PNG of dark strokes on white paper, as a photo or a scan of a drawn digit looks."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for points in strokes:
        draw.line(points, fill=0, width=size // 12, joint="curve")
    return png(image)


ONE = [[(100, 30), (100, 170)]]
SEVEN = [[(55, 40), (150, 40), (85, 170)]]


def test_a_drawn_digit_is_recognised(client, classifier):
    response = client.post("/predict", files={"file": ("one.png", drawn_digit(ONE), "image/png")})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == classifier.source
    assert answer["classes"] == [str(digit) for digit in range(10)]
    (prediction,) = answer["predictions"]
    assert prediction["name"] == "one.png"
    assert prediction["digit"] == 1 and prediction["label"] == "1"
    assert [guess["digit"] for guess in prediction["top3"]][0] == 1 and len(prediction["top3"]) == 3
    assert len(prediction["probabilities"]) == 10 and sum(prediction["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert prediction["probability"] == pytest.approx(max(prediction["probabilities"]))
    header, encoded = prediction["image"].split(",", 1)
    assert header == "data:image/png;base64"
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
    assert seen.shape == IMAGE_SHAPE and seen.dtype == np.uint8 and seen.max() > 128  # a light digit on black


def test_a_batch_answers_each_image_in_order(client):
    files = [
        ("files", ("seven.png", drawn_digit(SEVEN), "image/png")),
        ("files", ("one.png", drawn_digit(ONE), "image/png")),
    ]
    response = client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["name"] for p in predictions] == ["seven.png", "one.png"]
    assert [p["digit"] for p in predictions] == [7, 1]


def drawn_line(digits: list[list[list[tuple[int, int]]]], size: int = 200) -> bytes:
    """A PNG of several drawn digits side by side on one wide sheet, each as drawn_digit() draws it."""
    image = Image.new("L", (size * len(digits), size), 255)
    draw = ImageDraw.Draw(image)
    for place, strokes in enumerate(digits):
        for points in strokes:
            draw.line([(x + place * size, y) for x, y in points], fill=0, width=size // 12, joint="curve")
    return png(image)


STAR = [[(100, 20), (140, 170), (20, 70), (180, 70), (60, 170), (100, 20)]]


def test_a_number_is_read_with_each_digit_boxed(client):
    response = client.post("/read", files={"file": ("number.png", drawn_line([SEVEN, ONE, SEVEN]), "image/png")})
    assert response.status_code == 200, response.text
    (reading,) = response.json()["readings"]
    assert reading["name"] == "number.png"
    assert (reading["number"], reading["not_a_digit"], reading["reason"]) == ("717", False, None)
    boxes = [digit["box"] for digit in reading["digits"]]
    assert [box[0] // 200 for box in boxes] == [0, 1, 2]  # left to right, each inside its own drawing
    for digit in reading["digits"]:
        assert digit["probability"] > 0.9 and not digit["not_a_digit"] and len(digit["probabilities"]) == 10
        assert digit["image"].startswith("data:image/png;base64,")


def test_one_digit_reads_as_predict_answers_it(client):
    read = client.post("/read", files={"file": ("seven.png", drawn_digit(SEVEN), "image/png")}).json()
    predicted = client.post("/predict", files={"file": ("seven.png", drawn_digit(SEVEN), "image/png")}).json()
    (digit,) = read["readings"][0]["digits"]
    assert read["readings"][0]["number"] == "7"
    assert digit["probabilities"] == pytest.approx(predicted["predictions"][0]["probabilities"], abs=1e-6)


def test_a_star_is_not_a_digit_on_both_endpoints(client):
    predicted = client.post("/predict", files={"file": ("star.png", drawn_digit(STAR), "image/png")}).json()
    (prediction,) = predicted["predictions"]
    assert prediction["not_a_digit"] and prediction["reason"]
    (reading,) = client.post("/read", files={"file": ("star.png", drawn_digit(STAR), "image/png")}).json()["readings"]
    assert reading["not_a_digit"] and reading["reason"] and "?" in reading["number"]


def test_predict_says_when_a_picture_holds_several_digits(client):
    response = client.post("/predict", files={"file": ("two.png", drawn_line([SEVEN, ONE]), "image/png")})
    (prediction,) = response.json()["predictions"]
    assert prediction["not_a_digit"] and prediction["reason"].startswith("several digits")


def test_curl_style_untyped_part_is_accepted(client):
    response = client.post("/predict", files={"file": ("digit", drawn_digit(ONE), "application/octet-stream")})
    assert response.status_code == 200, response.text


def multipart(name: str, data: bytes, content_type: str = "image/png") -> tuple[bytes, str]:
    boundary = "digitlab-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "name, data, content_type, status",
    [
        ("empty.png", lambda: b"", "image/png", None),
        ("notes.png", lambda: b"these are words, not pixels\n" * 20, "image/png", None),
        ("half.png", lambda: drawn_digit(ONE)[:300], "image/png", None),
        ("blank.png", lambda: png(Image.new("L", (200, 200), 255)), "image/png", None),  # a page with no ink
        ("bomb.png", bomb, "image/png", None),
        ("notes.txt", lambda: b"hello", "text/plain", 415),
    ],
)
@pytest.mark.parametrize("endpoint", ["/predict", "/read"])
def test_a_bad_upload_answers_4xx_with_one_line(client, endpoint, name, data, content_type, status):
    response = client.post(endpoint, files={"file": (name, data(), content_type)})
    assert 400 <= response.status_code < 500, response.text
    if status:
        assert response.status_code == status
    error = response.json()["error"]
    assert name in error and "\n" not in error
    assert client.get("/health").json()["status"] == "ok"


def test_an_upload_over_the_limit_is_refused_with_413(classifier):
    with TestClient(create_app(classifier, max_upload_bytes=10_000)) as small:
        noise = np.random.default_rng(0).integers(0, 256, (120, 120), dtype=np.uint8)
        big = png(Image.fromarray(noise))
        assert len(big) > 10_000
        response = small.post("/predict", files={"file": ("big.png", big, "image/png")})
        assert response.status_code == 413
        assert "10000 bytes" in response.json()["error"]
        # without a Content-Length (chunked), the bytes are counted while they arrive
        body, content_type = multipart("big.png", big)
        chunks = (body[start : start + 4096] for start in range(0, len(body), 4096))
        response = small.post("/predict", content=chunks, headers={"content-type": content_type})
        assert "content-length" not in response.request.headers
        assert response.status_code == 413 and "limit" in response.json()["error"]
        assert small.get("/health").status_code == 200


def test_the_default_limit_is_a_few_megabytes():
    assert 1_000_000 <= MAX_UPLOAD_BYTES <= 20_000_000


@pytest.mark.parametrize(
    "request_kwargs, status, words",
    [
        ({"json": {"file": "one.png"}}, 415, "multipart/form-data"),
        ({"content": b"\x89PNG", "headers": {"content-type": "image/png"}}, 415, "multipart/form-data"),
        ({"files": {"picture": ("one.png", b"x", "image/png")}}, 400, "'file'"),
        ({"data": {"file": "one.png"}, "files": {"other": ("a", b"x")}}, 400, "file upload"),
    ],
)
def test_a_request_without_an_image_upload_is_refused(client, request_kwargs, status, words):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_errors_of_any_kind_have_a_json_body(client):
    assert client.get("/nowhere").json() == {"error": "Not Found"}
    assert client.get("/predict").status_code == 405 and "error" in client.get("/predict").json()


def test_health_names_the_model(client, classifier):
    assert client.get("/health").json() == {"status": "ok", "model": classifier.source, "samples": None}


def test_the_page_and_its_files_are_served_without_outside_links(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="pad"' in page.text and ">Read<" in page.text and "Clear" in page.text
    assert 'capture="environment"' in page.text  # a phone's camera
    for name in ("app.js", "style.css"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert "http://" not in response.text and "https://" not in response.text  # no CDN: it works offline
    assert "http://" not in page.text and "https://" not in page.text


def test_openapi_describes_the_endpoints(client):
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {"/predict", "/read", "/health", "/samples", "/samples/{sample_id}"}
    predict = document["paths"]["/predict"]["post"]
    assert "multipart/form-data" in predict["requestBody"]["content"]
    assert {"200", "400", "413", "415"} <= set(predict["responses"])
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("PredictResponse")
    fields = document["components"]["schemas"]["Prediction"]["properties"]
    assert {"digit", "label", "probability", "top3", "probabilities", "image", "name", "not_a_digit", "reason"} <= set(
        fields
    )
    read = document["paths"]["/read"]["post"]
    assert {"200", "400", "413", "415"} <= set(read["responses"])
    reading = document["components"]["schemas"]["Reading"]["properties"]
    assert {"name", "number", "not_a_digit", "reason", "digits"} <= set(reading)
    assert "box" in document["components"]["schemas"]["ReadDigit"]["properties"]
    assert document["paths"]["/health"]["get"]["responses"]["200"]


def test_a_model_for_other_image_sizes_is_refused_at_start(classifier, monkeypatch):
    from digitlab.errors import ConfigError

    class Other:
        source, class_names, image_shape = "runs/small", None, (12, 16)

    with pytest.raises(ConfigError, match="12x16"):
        create_app(Other())


def test_an_onnx_model_serves_the_same_digits(client, tmp_path):
    pytest.importorskip("onnxruntime")
    from digitlab.inference.classifier import DEFAULT_MODEL
    from digitlab.inference.export import export_onnx

    exported = export_onnx(DEFAULT_MODEL, tmp_path / "default.onnx")["path"]
    files = [
        ("files", (f"{name}.png", drawn_digit(strokes), "image/png")) for name, strokes in (("1", ONE), ("7", SEVEN))
    ]
    with TestClient(create_app(open_classifier(str(exported)))) as onnx_client:
        from_onnx = onnx_client.post("/predict", files=files).json()["predictions"]
    from_torch = client.post("/predict", files=files).json()["predictions"]
    assert [p["digit"] for p in from_onnx] == [p["digit"] for p in from_torch] == [1, 7]
    for onnx_answer, torch_answer in zip(from_onnx, from_torch):
        assert onnx_answer["probabilities"] == pytest.approx(torch_answer["probabilities"], abs=1e-5)
