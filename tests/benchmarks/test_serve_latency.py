"""benchmarks/serve_latency.py: a few requests per level against the real server write both reports."""

from __future__ import annotations

import json


def test_serve_latency_measures_each_level(load_script, tmp_path, capsys):
    out = tmp_path / "results"
    code = load_script("serve_latency").main(
        ["--clients", "1,2", "--requests", "6", "--warmup", "2", "--out", str(out)]
    )
    assert code == 0
    result = json.loads((out / "serve_latency.json").read_text())
    assert [row["clients"] for row in result["levels"]] == [1, 2]
    for row in result["levels"]:
        assert row["requests"] == 6 and row["failed"] == 0 and 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["throughput_per_s"] > 0
    assert result["setup"]["model"] and set(result["machine"]["cpu_features"]) >= {"avx2", "avx512_bf16"}
    markdown = (out / "serve_latency.md").read_text()
    assert markdown in capsys.readouterr().out
    assert (
        "| 1 | 6 | 0 |" in markdown and "target p50 < 20 ms at one client:" in markdown and "CPU features:" in markdown
    )
    assert "- failed requests: none of 12" in markdown
