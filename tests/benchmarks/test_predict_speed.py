"""benchmarks/predict_speed.py: both engines on a few images write both reports."""

from __future__ import annotations

import json


def test_predict_speed_times_both_engines(load_script, tiny_data, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--data-dir", str(tiny_data), "--images", "20", "--batch-sizes", "1,20", "--rounds", "2"]
    assert load_script("predict_speed").main([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "predict_speed.json").read_text())
    rows = [(row["model"], row["engine"], row["batch"]) for row in result["rows"]]
    assert rows == [
        (model, engine, batch) for model in ("cnn", "vgg") for batch in (1, 20) for engine in ("torch", "onnxruntime")
    ]
    for row in result["rows"]:
        assert row["images"] == 20 and len(row["seconds"]) == 2 and row["images_per_s"] > 0
    assert result["setup"]["opset"] == 18 and "max logit difference" in result["setup"]["models"]["vgg"]
    assert set(result["machine"]["cpu_features"]) >= {"avx2", "avx512_bf16"}
    markdown = (out / "predict_speed.md").read_text()
    assert markdown in capsys.readouterr().out
    assert "| cnn | onnxruntime | 20 |" in markdown and "target >= 2,000 images/s for the cnn" in markdown
    assert "CPU features:" in markdown
