"""benchmarks/redrawn_accuracy.py: a digit re-drawn as a person's picture comes back through predict's path."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageDraw

from digitlab.inference.mnist_like import to_mnist


def mnist_like_seven() -> np.ndarray:
    """A 7 as MNIST shows one: light strokes on black, inside 20x20 of a 28x28 field."""
    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).line([(7, 6), (20, 6), (11, 23)], fill=255, width=3, joint="curve")
    return np.asarray(image)


def test_a_redrawn_digit_is_dark_on_light_and_comes_back(load_script):
    script = load_script("redrawn_accuracy")
    seven = mnist_like_seven()
    expected = to_mnist(Image.fromarray(seven), "seven").ravel().astype(float)  # centred by mass as MNIST
    rng = np.random.default_rng(0)
    for _ in range(5):
        image, drawn = script.redraw(seven, rng)
        assert image.mode == "L" and all(script.CANVAS[0] <= side <= script.CANVAS[1] for side in image.size)
        page = np.asarray(image)
        assert np.median(page) > 150 and page.min() < 120  # light paper, dark ink
        back = to_mnist(image, "redrawn").ravel().astype(float)
        assert np.corrcoef(back, expected)[0, 1] > 0.7, drawn


def test_redrawn_accuracy_writes_both_reports(load_script, tiny_data, tmp_path, capsys):
    out = tmp_path / "results"
    assert load_script("redrawn_accuracy").main(["--data-dir", str(tiny_data), "--images", "6", "--out", str(out)]) == 0
    result = json.loads((out / "redrawn_accuracy.json").read_text())
    assert result["setup"]["images"] == 6 and 0 <= result["overall"]["redrawn"] <= 1
    assert {row["subset"] for row in result["subsets"]} >= {"PNG files", "JPEG files"}
    assert "cpu_features" in result["machine"]
    markdown = (out / "redrawn_accuracy.md").read_text()
    assert markdown in capsys.readouterr().out and "through `digitlab predict`" in markdown
