"""benchmarks/read_numbers.py: numbers composed with each spacing class, their scoring, and the report."""

from __future__ import annotations

import json

import numpy as np


def test_spacing_classes_keep_their_gaps(load_script):
    script = load_script("read_numbers")
    one = np.zeros((28, 28), dtype=np.uint8)
    one[4:24, 12:16] = 255
    for spacing, (low, high) in {"wide": (8, None), "touching": (None, 1)}.items():
        line = script.compose([one, one], spacing, np.random.default_rng(1))
        columns = np.flatnonzero(line.max(axis=0) > 0.3)
        gaps = np.diff(columns) - 1
        widest = int(gaps.max()) if gaps.size else 0
        if low is not None:
            assert widest >= low, (spacing, widest)
        if high is not None:
            assert widest <= high, (spacing, widest)


def test_edit_distance_counts_missed_and_extra_digits(load_script):
    script = load_script("read_numbers")
    assert script.edit_distance("2026", "2026") == 0
    assert script.edit_distance("2026", "206") == 1 and script.edit_distance("2026", "20266") == 1
    assert script.edit_distance("2026", "") == 4


def test_read_numbers_writes_its_report(load_script, tiny_data, tmp_path):
    out = tmp_path / "results"
    argv = ["--data-dir", str(tiny_data), "--count", "2", "--classes", "wide", "--out", str(out)]
    assert load_script("read_numbers").main(argv) == 0
    result = json.loads((out / "read_numbers.json").read_text())
    assert set(result["classes"]) == {"wide"} and 0 <= result["classes"]["wide"]["whole_number"] <= 1
    assert "cpu_features" in result["machine"]
