"""benchmarks/adapt_writers.py: each simulated writer's held-out set measured and reported (the adapting itself
is tested in tests/inference/test_adapt.py)."""

from __future__ import annotations

import json


def test_before_only_measures_each_style(load_script, tiny_data, tmp_path):
    out = tmp_path / "results"
    argv = ["--styles", "slanted,marker", "--per-digit", "1", "--held-out", "1", "--before-only", "--out", str(out)]
    assert load_script("adapt_writers").main([*argv, "--data-dir", str(tiny_data)]) == 0
    result = json.loads((out / "adapt_writers.json").read_text())
    rows = {row["style"]: row for row in result["rows"]}
    assert set(rows) == {"slanted", "marker"} and all(0 <= row["before"] <= 1 for row in rows.values())
    assert "cpu_features" in result["machine"]
