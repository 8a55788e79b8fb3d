"""benchmarks/reject.py: the AUROC it reports, and both of its reports written on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.data import nondigits

HAS_FASHION = any((nondigits.FASHION_DIR / f"t10k-images-idx3-ubyte{gz}").is_file() for gz in ("", ".gz"))


def test_auroc_is_the_chance_a_digit_scores_above_a_non_digit(load_script):
    auroc = load_script("reject").auroc
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2, 0.3])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.5, 0.6])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5  # ties count half
    assert auroc(np.array([0.9, 0.4]), np.array([0.5, 0.1])) == 0.75


@pytest.mark.skipif(not HAS_FASHION, reason="Debian's dataset-fashion-mnist is not installed")
def test_reject_writes_its_report(load_script, tiny_data, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--data-dir", str(tiny_data), "--count", "3", "--redrawn", "4", "--out", str(out)]
    assert load_script("reject").main(argv) == 0
    result = json.loads((out / "reject.json").read_text())
    sets = [row["set"] for row in result["rows"]]
    assert sets[0] == "MNIST test digits" and len(sets) == 2 + len(load_script("reject").SETS)
    assert all(0 <= row["auroc"] <= 1 for row in result["rows"][2:])
    assert result["setup"]["reject_below"] is not None  # the shipped model is calibrated
    assert all(0 <= row["rejected"] <= 1 for row in result["rows"])
    assert "| set | images | AUROC" in (out / "reject.md").read_text()
