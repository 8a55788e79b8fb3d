"""benchmarks/predict_files.py and predict_pictures.py: the two classes of pictures, the answers compared file by
file, and a small run of the real command against a checkout (this one) that writes both reports."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageOps

from helpers import REPO_ROOT


def test_the_pictures_are_the_same_for_a_seed_and_of_their_class(load_script, tmp_path):
    pictures = load_script("predict_pictures")
    digits = (np.random.default_rng(0).random((12, 28, 28)) * 255).astype(np.uint8)
    scans = pictures.write_class("scans", tmp_path / "a", digits, 12)
    again = pictures.write_class("scans", tmp_path / "b", digits, 12)
    assert [path.read_bytes() for path in scans] == [path.read_bytes() for path in again]
    sizes = [Image.open(path).size for path in scans]
    assert all(40 <= min(size) and max(size) <= 1000 for size in sizes)
    assert {path.suffix for path in scans} == {".png", ".jpg"}
    phone = pictures.write_class("phone", tmp_path / "phone", digits, 4)
    assert [Image.open(path).size for path in phone] == [(4000, 3000)] * 3 + [(3000, 4000)]  # one on its side
    assert [ImageOps.exif_transpose(Image.open(path)).size for path in phone] == [(4000, 3000)] * 4  # shown upright
    assert all(Image.open(path).format == "JPEG" for path in phone)


def test_answers_are_compared_file_by_file(load_script):
    script = load_script("predict_files")
    seven = {"file": "a.png", "label": "7", "not_a_digit": False, "reason": None, "probability": 0.9}
    refused = {"file": "b.png", "error": "b.png: no ink found"}
    same = script.agreement([seven, refused], [seven | {"probability": 0.8}, refused])
    assert same["identical"] and same["same_label"] == 1 and same["same_error"] == 1
    assert abs(same["max_probability_difference"] - 0.1) < 1e-9
    other = script.agreement([seven, refused], [seven | {"reason": "low confidence"}, seven | {"file": "b.png"}])
    assert not other["identical"] and other["differing"] == ["a.png", "b.png"] and other["same_verdict"] == 0


def test_a_small_run_against_a_checkout_writes_both_reports(load_script, tmp_path, tiny_data, capsys):
    out = tmp_path / "results"
    code = load_script("predict_files").main(
        ["--before", str(REPO_ROOT), "--scans", "6", "--phone", "0", "--rounds", "1", "--out", str(out)]
        + ["--data-dir", str(tiny_data)]
    )
    assert code == 0
    result = json.loads((out / "predict_files.json").read_text())
    (found,) = result["classes"].values()
    assert [row["code"] for row in found["rows"]] == ["before", "after"] and found["agreement"]["identical"]
    assert all(row["files"] == 6 and row["median_s"] > 0 for row in found["rows"])
    markdown = (out / "predict_files.md").read_text()
    assert markdown in capsys.readouterr().out
    assert "| scans | after | 6 |" in markdown and "target for scans" in markdown and "CPU features:" in markdown
