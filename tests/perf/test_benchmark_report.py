"""digitlab.perf.benchmark_report: the machine header (CPU features included), Markdown tables, stall notes."""

from __future__ import annotations

import torch

from digitlab.perf import benchmark_report
from digitlab.perf.machine import CPU_FEATURES


def test_machine_names_the_cpu_features_and_threads():
    info = benchmark_report.machine(threads=3)
    assert set(info["cpu_features"]) == set(CPU_FEATURES) and info["threads"] == 3
    assert info["torch"] == torch.__version__ and info["physical_cores"] >= 1
    lines = benchmark_report.machine_lines(info)
    assert any(line.startswith("- machine: ") and "3 torch threads" in line for line in lines)
    (features,) = [line for line in lines if line.startswith("- CPU features: ")]
    assert all(name in features for name in CPU_FEATURES)
    assert set(info["cpu_kernels"]) == {"aten_capability", "onednn_max_isa", "onednn_bf16_lstm", "bf16_native"}
    assert any(line.startswith("- CPU kernels: ATen ") for line in lines)


def test_features_text():
    assert (
        benchmark_report.features_text({"avx2": True, "avx512f": False, "amx_tile": False})
        == "avx2; without avx512f, amx_tile"
    )
    assert benchmark_report.features_text({"avx2": True}) == "avx2"
    assert benchmark_report.features_text({"avx2": False}) == "without avx2"


def test_markdown_table():
    columns = [
        benchmark_report.Column("name", lambda row: row["name"], "left"),
        benchmark_report.Column("x", lambda row: benchmark_report.number(row["x"], 1)),
        benchmark_report.Column("ok", lambda row: "yes", "center"),
    ]
    rows = [{"name": "a", "x": 1.25}, {"name": "b", "x": None}]
    assert benchmark_report.markdown_table(rows, columns) == [
        "| name | x | ok |",
        "|:---|---:|:---:|",
        "| a | 1.2 | yes |",
        "| b | n/a | yes |",
    ]


def test_stall_lines_warn_about_contention():
    assert benchmark_report.stall_lines({}) == ["CPU stall during the timed runs: unknown (no /proc/pressure/cpu)"]
    (quiet,) = benchmark_report.stall_lines({"lstm baseline": 0.01})
    assert "lstm baseline 1%" in quiet
    busy = benchmark_report.stall_lines({"lstm baseline": 0.01, "lstm digitlab fp32": 0.5})
    assert len(busy) == 2 and busy[1].startswith("WARNING")


def test_log_writes_to_stderr(capsys):
    benchmark_report.log("progress", 1)
    captured = capsys.readouterr()
    assert captured.err == "progress 1\n" and captured.out == ""


def test_kernels_text_says_what_the_cpu_kernels_run():
    narrowed = {"aten_capability": "AVX2", "onednn_max_isa": "AVX2", "onednn_bf16_lstm": False, "bf16_native": False}
    text = benchmark_report.kernels_text(narrowed)
    assert text == "ATen AVX2, oneDNN narrowed to AVX2, no bf16 LSTM in oneDNN, bf16 emulated"
    full = {"aten_capability": "AVX512", "onednn_max_isa": None, "onednn_bf16_lstm": True, "bf16_native": True}
    assert benchmark_report.kernels_text(full) == "ATen AVX512, oneDNN not narrowed, bf16 LSTM in oneDNN, bf16 native"


def test_pressure_lines_name_each_row():
    rows = [{"n": 1, "cpu_pressure_before": "some avg10=0.00", "cpu_pressure_after": "some avg10=1.50"}]
    assert benchmark_report.pressure_lines(rows, lambda row: f"{row['n']} clients") == [
        "- 1 clients: pressure before `some avg10=0.00`, after `some avg10=1.50`"
    ]
