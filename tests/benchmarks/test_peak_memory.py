"""benchmarks/peak_memory.py runs `digitlab train` in a child process and reads the run's peak RSS."""

from __future__ import annotations

import json

import pytest


def test_peak_memory_reads_the_runs_peak_rss(load_script, tiny_data, tmp_path, capsys):
    out = tmp_path / "memory.json"
    code = load_script("peak_memory").main(
        [
            "--data-dir",
            str(tiny_data),
            "--models",
            "mlp",
            "--batch-size",
            "50",
            "--train-limit",
            "100",
            "--threads",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0  # far below the limit
    result = json.loads(out.read_text())
    (row,) = result["results"]
    assert row["exit_code"] == 0 and row["micro_batch"] == 100 and row["examples"] == 100
    assert 0 < row["peak_rss_mb"] <= row["wait4_peak_rss_mb"] + 1
    assert row["est_full_data_mb"] == pytest.approx(row["peak_rss_mb"] + 59900 * 28 * 28 * 4 / 2**20)
    assert "avx2" in result["machine"]["cpu_features"]
    printed = capsys.readouterr().out
    assert "| mlp | 50 | 100 | 100 |" in printed and "CPU features:" in printed


def test_a_failed_run_is_reported_and_fails_the_script(load_script, tiny_data, capsys):
    code = load_script("peak_memory").main(
        ["--data-dir", str(tiny_data), "--models", "mlp", "--batch-size", "500", "--train-limit", "100"]
    )  # the batch is larger than the 100 examples: `digitlab train` refuses it
    assert code == 1
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| mlp |")]
    assert "failed (exit 2)" in row and row.endswith("| no |")
