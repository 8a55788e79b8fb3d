"""Recognising a person's image files (digitlab.inference.recognise) and `digitlab predict [MODEL] IMAGE ...`.

One bad file gives its own error and the others are still answered; the CLI prints a table or JSON, one
stderr line per bad file and exits 2 then; MODEL may be left out (the shipped model), a run directory or an
.onnx file; a run directory alone still classifies MNIST test digits.
"""

from __future__ import annotations

import io
import json
import sys
import types

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.cli import main
from digitlab.inference.classifier import DEFAULT_SOURCE, is_model, open_classifier
from digitlab.inference.recognise import describe, find_images, predict_files, recognise

SEVEN = [(55, 40), (150, 40), (85, 170)]
ONE = [(100, 30), (100, 170)]


def drawn(points, paper=255, ink=0, size=200) -> bytes:
    image = Image.new("L", (size, size), paper)
    ImageDraw.Draw(image).line(points, fill=ink, width=size // 12, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def classifier():
    return open_classifier(None)


@pytest.fixture
def folder(tmp_path):
    """seven.png (dark on light), one.png (light on dark) and notes.png (text, no image)."""
    digits = tmp_path / "digits"
    digits.mkdir()
    (digits / "seven.png").write_bytes(drawn(SEVEN))
    (digits / "one.png").write_bytes(drawn(ONE, paper=0, ink=255))
    (digits / "notes.png").write_text("not a picture\n")
    (digits / "readme.txt").write_text("not taken: not an image suffix\n")
    return digits


def test_each_file_is_answered_in_order_and_a_bad_one_does_not_stop_the_rest(classifier, folder, tmp_path):
    paths = [folder / "seven.png", folder / "notes.png", folder / "one.png", tmp_path / "missing.png"]
    results = predict_files(classifier, paths, show_dir=tmp_path / "seen")
    assert [result["file"] for result in results] == [str(path) for path in paths]
    assert [result.get("digit") for result in results] == [7, None, 1, None]
    for result in (results[1], results[3]):
        assert set(result) == {"file", "error"} and result["error"].startswith(result["file"] + ": ")
    good = results[0]
    assert good["label"] == "7" and 0 < good["probability"] <= 1 and len(good["top3"]) == 3
    assert [guess["probability"] for guess in good["top3"]] == sorted(
        (guess["probability"] for guess in good["top3"]), reverse=True
    )
    seen = sorted((tmp_path / "seen").iterdir())
    assert [path.name for path in seen] == ["0001-seven.png", "0003-one.png"]
    assert results[0]["preprocessed"] == str(seen[0])
    image = np.asarray(Image.open(seen[0]))
    assert image.shape == (28, 28) and image.dtype == np.uint8 and image.max() == 255


def test_bytes_from_elsewhere_are_named_as_given(classifier):
    (result,) = predict_files(classifier, [("upload", drawn(SEVEN))])
    assert result["file"] == "upload" and result["digit"] == 7


def test_describe_gives_what_recognise_gives_from_the_probabilities(classifier):
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[:, 4:24, 13:15] = 255
    assert describe(classifier.probabilities(images), classifier.class_names) == recognise(classifier, images)


def test_folders_globs_and_standard_input_are_expanded(folder):
    assert find_images([str(folder)]) == [str(folder / "notes.png"), str(folder / "one.png"), str(folder / "seven.png")]
    assert find_images([str(folder / "s*.png"), "-"]) == [str(folder / "seven.png"), "-"]
    assert find_images([str(folder / "nothing*.png")]) == [str(folder / "nothing*.png")]  # kept: load says so


def test_a_model_argument_is_told_from_an_image(trained_run, folder):
    assert is_model(trained_run) and is_model("exported.onnx")
    assert not is_model(folder) and not is_model(folder / "seven.png")


def run(capsys, argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_prints_a_table_with_the_default_model(capsys, folder):
    code, out, err = run(capsys, ["predict", folder / "seven.png", folder / "one.png"])
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split() == ["file", "digit", "probability", "top", "3"]
    assert [row.split()[:2] for row in rows] == [[str(folder / "seven.png"), "7"], [str(folder / "one.png"), "1"]]
    assert len({row.index("%") for row in rows}) == 1  # aligned columns


def test_a_bad_file_is_one_stderr_line_and_exit_2_the_others_printed(capsys, folder):
    code, out, err = run(capsys, ["predict", folder])
    assert code == 2
    assert err.splitlines() == [err.strip()] and err.startswith(f"digitlab: {folder / 'notes.png'}: ")
    assert "Traceback" not in err and len(out.splitlines()) == 3  # header, one, seven


def test_predict_json_and_the_images_the_model_saw(capsys, folder, tmp_path):
    seen = tmp_path / "seen"
    code, out, err = run(capsys, ["predict", f"{folder}/*.png", "--json", "--show-preprocessed", seen])
    assert code == 2 and "notes.png" in err
    document = json.loads(out)
    assert document["model"] == DEFAULT_SOURCE
    files = [entry["file"] for entry in document["predictions"]]
    assert files == [str(folder / name) for name in ("notes.png", "one.png", "seven.png")]
    assert "error" in document["predictions"][0] and document["predictions"][2]["digit"] == 7
    assert len(list(seen.iterdir())) == 2


def test_predict_reads_standard_input(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(drawn(SEVEN))))
    code, out, _ = run(capsys, ["predict", "-", "--json"])
    (answer,) = json.loads(out)["predictions"]
    assert code == 0 and answer["file"] == "-" and answer["digit"] == 7


def test_predict_with_a_run_directory_and_images(capsys, trained_run, folder):
    code, out, _ = run(capsys, ["predict", trained_run, folder / "seven.png", "--json"])
    document = json.loads(out)
    assert code == 0 and document["model"] == str(trained_run)
    assert 0 <= document["predictions"][0]["digit"] <= 9


def test_a_run_directory_alone_still_classifies_test_digits(capsys, trained_run, session_data_dir):
    code, out, _ = run(capsys, ["predict", trained_run, "--test-samples", 2, "--data-dir", session_data_dir])
    assert code == 0 and len([line for line in out.splitlines() if line.startswith("test image ")]) == 2


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], "pass the image files"),
        (["--test-samples", "3", "seven.png"], "--test-samples"),
        (["model.onnx"], "pass the image files"),
    ],
)
def test_predict_misuse_is_one_line(capsys, argv, words):
    code, out, err = run(capsys, ["predict", *argv])
    assert code == 2 and out == "" and err.startswith("digitlab: error: ") and words in err
    assert len(err.splitlines()) == 1


def test_predict_with_an_onnx_model(capsys, trained_run, folder, tmp_path):
    for module in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    from digitlab.inference.export import export_onnx

    exported = export_onnx(trained_run, tmp_path / "model.onnx")["path"]
    code, out, _ = run(capsys, ["predict", exported, folder / "seven.png", "--json"])
    document = json.loads(out)
    assert code == 0 and document["model"] == str(exported)
    code, torch_out, _ = run(capsys, ["predict", trained_run, folder / "seven.png", "--json"])
    onnx_answer, torch_answer = document["predictions"][0], json.loads(torch_out)["predictions"][0]
    assert onnx_answer["digit"] == torch_answer["digit"]
    assert onnx_answer["probability"] == pytest.approx(torch_answer["probability"], abs=1e-4)


def test_worker_processes_give_the_same_answers_in_order(classifier, folder, tmp_path, monkeypatch):
    paths = [folder / "seven.png", folder / "notes.png", folder / "one.png", tmp_path / "missing.png", "-"]
    paths += [folder / "one.png", folder / "seven.png"]
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(drawn(SEVEN))))
    alone = predict_files(classifier, paths, show_dir=tmp_path / "alone")
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(drawn(SEVEN))))
    pooled = predict_files(classifier, paths, show_dir=tmp_path / "pooled", workers=2)
    assert [result.get("digit") for result in pooled] == [7, None, 1, None, 7, 1, 7]
    strip = [{key: value for key, value in result.items() if key != "preprocessed"} for result in alone]
    assert [{key: value for key, value in result.items() if key != "preprocessed"} for result in pooled] == strip
    for one, other in zip(sorted((tmp_path / "alone").iterdir()), sorted((tmp_path / "pooled").iterdir())):
        assert one.name == other.name and one.read_bytes() == other.read_bytes()
