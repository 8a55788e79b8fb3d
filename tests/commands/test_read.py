"""`digitlab read [MODEL] IMAGE ...` end to end through digitlab.cli.main: the number and each digit printed,
--json with everything, one stderr line and exit 2 for a bad file (the others still read)."""

from __future__ import annotations

import json

from PIL import Image

from drawings import FOUR, SEVEN, drawing
from helpers import assert_user_error, run_cli


def write_line(path) -> None:
    canvas = Image.new("L", (390, 200), 255)
    canvas.paste(drawing(strokes=[SEVEN]), (0, 0))
    canvas.paste(drawing(strokes=FOUR), (190, 0))
    canvas.save(path)


def test_read_prints_the_number_and_each_digit(capsys, tmp_path):
    write_line(tmp_path / "74.png")
    code, out, err = run_cli(capsys, ["read", tmp_path / "74.png"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{tmp_path / '74.png'}: 74"
    assert lines[1].startswith("   1. 7 ") and lines[2].startswith("   2. 4 ") and "box [" in lines[2]


def test_read_json_and_a_bad_file(capsys, tmp_path):
    write_line(tmp_path / "74.png")
    (tmp_path / "notes.png").write_text("not a picture\n")
    code, out, err = run_cli(capsys, ["read", tmp_path / "74.png", tmp_path / "notes.png", "--json"])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"digitlab: {tmp_path / 'notes.png'}: ")
    readings = json.loads(out)["readings"]
    assert readings[0]["number"] == "74" and len(readings[0]["digits"]) == 2
    assert set(readings[0]["digits"][0]) >= {"box", "digit", "label", "probability", "top3", "not_a_digit", "reason"}
    assert set(readings[1]) == {"file", "error"}


def test_read_without_images(capsys):
    assert_user_error(capsys, ["read"], "pass the image files", code=2)


def test_show_segments_writes_each_digit_apart(capsys, tmp_path):
    write_line(tmp_path / "my.line.png")
    code, out, _ = run_cli(capsys, ["read", tmp_path / "my.line.png", "--json", "--show-segments", tmp_path / "seen"])
    assert code == 0
    shown = [digit["preprocessed"] for digit in json.loads(out)["readings"][0]["digits"]]
    assert len(set(shown)) == 2 and sorted(p.name for p in (tmp_path / "seen").iterdir()) == sorted(
        name.rsplit("/", 1)[-1] for name in shown
    )
