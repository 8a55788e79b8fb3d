"""benchmarks/epoch_time.py runs end to end on a tiny synthetic data set and reports, per model, each side's
seconds and digitlab's ratios to the baseline measured in the same run."""

from __future__ import annotations

import json

import pytest

from digitlab.perf.machine import CPU_FEATURES

# 2 layers of 128 over 28 rows of 28 pixels, then 128 -> 10 (tests/perf/test_flops.py checks the formula)
LSTM_MACS = 28 * (4 * 128 * (28 + 128) + 4 * 128 * (128 + 128)) + 128 * 10


def table(printed: str) -> list[list[str]]:
    """The rows of the Markdown table in `printed` (heading first), as lists of cells; the alignment row dropped."""
    rows = [line.strip("|").split("|") for line in printed.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows if not set("".join(row)) <= set(":- ")]


def test_epoch_time_runs_and_reports_ratios_per_model(load_script, tiny_data, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = load_script("epoch_time").main(
        [
            "--data-dir",
            str(tiny_data),
            "--train-limit",
            "100",
            "--models",
            "lstm,mlp",
            "--batch-size",
            "50",
            "--warmup-steps",
            "1",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--precisions",
            "fp32,bf16",
            "--matmul-size",
            "64",
            "--matmul-repeats",
            "2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["settings"]["examples"] == 100 and result["settings"]["steps"] == 2
    assert result["settings"]["precisions"] == ["fp32", "bf16"]
    assert set(result["machine"]["cpu_features"]) == set(CPU_FEATURES)
    assert [row["model"] for row in result["results"]] == ["lstm", "mlp"]
    for row in result["results"]:
        for side in ("baseline", "digitlab fp32", "digitlab bf16"):
            assert row["sides"][side]["seconds"] > 0
            assert all(run["steps"] == 2 and run["cpu_seconds"] > 0 for run in row["sides"][side]["runs"])
        assert set(row["ratios"]) == {"digitlab fp32", "digitlab bf16"}
        for side, ratio in row["ratios"].items():
            assert ratio == pytest.approx(row["sides"][side]["seconds"] / row["sides"]["baseline"]["seconds"])
        for precision in ("fp32", "bf16"):
            floor = row["floors"][precision]
            assert floor["x_floor"] == pytest.approx(
                row["sides"][f"digitlab {precision}"]["seconds"] / floor["seconds"]
            )
    lstm = result["results"][0]
    assert lstm["flops"]["epoch_flops"] == lstm["flops"]["epoch_flops_full"] == LSTM_MACS * 2 * 3 * 100
    rate = result["matmul"]["used_gflops"]["fp32"]
    assert lstm["floors"]["fp32"]["seconds"] == pytest.approx(LSTM_MACS * 6 * 100 / (rate * 1e9))
    assert result["peak_rss_mb"] > 0

    printed = capsys.readouterr().out
    heading, *rows = table(printed)
    assert [row[0] for row in rows] == ["lstm", "mlp"]
    assert all(len(row) == len(heading) for row in rows)
    for row, measured in zip(rows, result["results"]):
        for precision in ("fp32", "bf16"):
            (column,) = [i for i, name in enumerate(heading) if name.startswith("ratio") and f"({precision}/" in name]
            assert float(row[column]) == pytest.approx(measured["ratios"][f"digitlab {precision}"], abs=0.006)
    assert "CPU features:" in printed and "cpu pressure before" in printed and "cpu pressure after" in printed


def test_precisions_choose_the_sides(load_script):
    script = load_script("epoch_time")
    args = script.parse_args(["--models", "lstm", "--precisions", "fp32"])
    assert list(script.sides(args, None, None, "lstm")) == ["baseline", "digitlab fp32"]
    assert not any("bf16" in column.heading for column in script.columns(args.precisions))
    defaults = script.parse_args([])
    assert defaults.precisions == ["fp32", "bf16"] and defaults.models == ["lstm", "blstm", "cnn"]
    assert defaults.repeats == 3 and defaults.batch_size == 500 and defaults.threads > 0
    for wrong in (
        ["--precisions", "fp16"],
        ["--precisions", "fp32,fp32"],
        ["--precisions", ""],
        ["--models", "rnn"],
        ["--repeats", "0"],
        ["--warmup-steps", "-1"],
    ):
        with pytest.raises(SystemExit):
            script.parse_args(wrong)


def test_a_batch_larger_than_the_data_is_refused(load_script, tiny_data):
    with pytest.raises(SystemExit, match="batch-size 500 is larger than the training set"):
        load_script("epoch_time").main(["--data-dir", str(tiny_data), "--train-limit", "100", "--threads", "1"])
