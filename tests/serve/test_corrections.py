"""Corrections kept as a person's samples through the REST API (digitlab.serve.corrections): POST /samples keeps
one, GET lists, DELETE removes; a bad correction answers 4xx and writes nothing; a server without --samples 409."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.inference.classifier import open_classifier
from digitlab.serve.app import create_app
from digitlab.store.samples import open_samples
from drawings import SEVEN, bomb, drawing, encode


@pytest.fixture(scope="module")
def classifier():
    return open_classifier(None)


@pytest.fixture
def client(classifier):
    with TestClient(create_app(classifier)) as client:
        yield client


@pytest.fixture
def keeping(classifier, tmp_path):
    """A client of a server that keeps corrections in tmp_path/samples."""
    with TestClient(create_app(classifier, samples=open_samples(tmp_path / "samples", create=True))) as client:
        yield client


def seen_png(side: int = 28) -> bytes:
    image = np.zeros((side, side), dtype=np.uint8)
    image[5:23, 12:16] = 255
    return encode(Image.fromarray(image))


def test_a_correction_is_kept_listed_and_removed(keeping, tmp_path):
    files = {
        "seen": ("seen.png", seen_png(), "image/png"),
        "file": ("drawing.png", encode(drawing(strokes=(SEVEN,))), "image/png"),
    }
    response = keeping.post("/samples", data={"label": "7"}, files=files)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["label"] == "7" and record["source"] == "drawing.png"
    assert keeping.get("/health").json()["samples"] == str(tmp_path / "samples")
    listed = keeping.get("/samples").json()
    assert listed["counts"] == {"7": 1} and [r["id"] for r in listed["samples"]] == [record["id"]]
    images, labels, _ = open_samples(tmp_path / "samples").load()
    assert labels.tolist() == [7] and np.array_equal(images[0], np.asarray(Image.open(io.BytesIO(seen_png()))))
    assert keeping.delete(f"/samples/{record['id']}").status_code == 200
    assert keeping.get("/samples").json()["samples"] == []
    assert keeping.delete(f"/samples/{record['id']}").status_code == 404


@pytest.mark.parametrize(
    "data, files, words",
    [
        ({"label": "12"}, {"seen": ("s.png", seen_png(), "image/png")}, "'label' must be one of"),
        ({}, {"seen": ("s.png", seen_png(), "image/png")}, "'label' must be one of"),
        ({"label": "3"}, {}, "no 'seen' image"),
        ({"label": "3"}, {"seen": ("s.png", seen_png(40), "image/png")}, "must be the 28x28 image"),
        ({"label": "3"}, {"seen": ("s.png", b"not a picture", "image/png")}, "'seen' is not an image"),
        ({"label": "3"}, {"seen": ("s.txt", b"hello", "text/plain")}, "is not an image"),
        ({"label": "3"}, {"seen": ("s.png", bomb(), "image/png")}, "'seen' is not an image"),
        (
            {"label": "3"},
            {"seen": ("s.png", seen_png(), "image/png"), "file": ("b.png", bomb(), "image/png")},
            "not an image",
        ),
    ],
)
def test_a_bad_correction_answers_4xx_and_keeps_nothing(keeping, tmp_path, data, files, words):
    response = keeping.post("/samples", data=data, files=files or {"other": ("x.png", b"x", "image/png")})
    assert 400 <= response.status_code < 500 and words in response.json()["error"], response.text
    assert keeping.get("/samples").json()["samples"] == []
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["digitlab-samples.json"]


def test_samples_need_a_server_started_with_samples(client):
    response = client.post("/samples", data={"label": "1"}, files={"seen": ("s.png", seen_png(), "image/png")})
    assert response.status_code == 409 and "--samples" in response.json()["error"]
    assert client.get("/samples").status_code == 409
    assert client.get("/health").json()["samples"] is None


def test_a_removal_outside_the_folder_is_refused(keeping, tmp_path):
    (tmp_path / "secret.json").write_text("{}")
    for bad in ("..%2Fsecret", "0" * 31):
        response = keeping.delete(f"/samples/{bad}")
        assert 400 <= response.status_code < 500
    assert (tmp_path / "secret.json").exists()
