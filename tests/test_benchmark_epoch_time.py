"""benchmarks/epoch_time.py runs end to end on a tiny synthetic IDX data set; its FLOP counts match hand counts;
benchmarks/peak_memory.py runs `digitlab train` and reads its peak RSS."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from digitlab import idx
from digitlab.models import build

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "epoch_time.py"


def load_script(path: Path = SCRIPT, name: str = "epoch_time_benchmark"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def write_synthetic_idx(folder: Path, train: int = 256, test: int = 64) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("t10k", test)):
        idx.write(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        labels = np.arange(count) % 10  # every class present
        idx.write(folder / f"{split}-labels-idx1-ubyte", rng.permutation(labels).astype(np.uint8))


def test_epoch_time_runs_and_reports_every_column(tmp_path, capsys):
    data_dir, out = tmp_path / "data", tmp_path / "result.json"
    data_dir.mkdir()
    write_synthetic_idx(data_dir)

    threads = torch.get_num_threads()
    try:
        code = load_script().main(["--data-dir", str(data_dir), "--train-limit", "100", "--models", "lstm",
                                   "--batch-size", "50", "--warmup-steps", "1", "--repeats", "1", "--threads", "1",
                                   "--precisions", "fp32,bf16", "--matmul-size", "64", "--matmul-repeats", "2",
                                   "--json", str(out)])
    finally:
        torch.set_num_threads(threads)  # the script sets it for the whole process

    assert code == 0
    result = json.loads(out.read_text())
    assert result["settings"]["examples"] == 100 and result["settings"]["steps"] == 2
    assert result["settings"]["precisions"] == ["fp32", "bf16"]
    (row,) = result["results"]
    assert row["model"] == "lstm"
    for side in ("baseline", "digitlab fp32", "digitlab bf16"):
        assert row["sides"][side]["seconds"] > 0
        assert all(run["steps"] == 2 and run["cpu_seconds"] > 0 for run in row["sides"][side]["runs"])
    assert set(row["ratios"]) == {"digitlab fp32", "digitlab bf16"} and all(r > 0 for r in row["ratios"].values())
    assert row["ratio"] == row["ratios"]["digitlab fp32"]
    # 2 layers of 128 over 28 rows of 28 pixels, then 128 -> 10: see test_lstm_flops for the formula
    macs = 28 * (4 * 128 * (28 + 128) + 4 * 128 * (128 + 128)) + 128 * 10
    assert row["flops"]["epoch_flops"] == row["flops"]["epoch_flops_full"] == macs * 2 * 3 * 100
    for precision in ("fp32", "bf16"):
        rate = result["matmul"]["used_gflops"][precision]
        assert rate > 0 and result["matmul"]["before"][precision]["size"] == 64
        floor = row["floors"][precision]
        assert floor["seconds"] == pytest.approx(macs * 6 * 100 / (rate * 1e9))
        assert floor["x_floor"] == pytest.approx(row["sides"][f"digitlab {precision}"]["seconds"] / floor["seconds"])
    assert result["peak_rss_mb"] > 0
    printed = capsys.readouterr().out
    assert ("| model | baseline fp32 s | digitlab fp32 s | ratio (fp32/baseline fp32) | digitlab bf16 s | "
            "ratio (bf16/baseline fp32) | fp32 floor s | fp32 x floor | bf16 floor s | bf16 x floor |") in printed
    assert "| lstm |" in printed
    assert "training GFLOP per epoch" in printed and "matmul GFLOP/s (64x64 @ 64x64" in printed
    assert "cpu pressure before" in printed and "cpu pressure after" in printed and "peak RSS" in printed


def test_precisions_choose_the_sides():
    script = load_script()
    assert list(script.measurements(["fp32"])) == ["baseline", "digitlab fp32"]
    assert list(script.measurements(["bf16"])) == ["baseline", "digitlab bf16"]
    headings = [c.heading for c in script.columns(["fp32"])]
    assert headings == ["model", "baseline fp32 s", "digitlab fp32 s", "ratio (fp32/baseline fp32)", "fp32 floor s",
                        "fp32 x floor"]
    assert script.parse_args(["--models", "lstm"]).precisions == ["fp32", "bf16"]
    assert script.parse_args([]).repeats == 3 and script.parse_args([]).batch_size == 500
    for wrong in ("fp16", "fp32,fp32", ""):
        with pytest.raises(SystemExit):
            script.parse_args(["--precisions", wrong])


def test_lstm_flops():
    """Input 4, hidden 3, 1 layer, 5 steps: 4 gates x 3 x (4 + 3) = 84 MACs a step; then a 3 -> 2 head."""
    script = load_script()
    model = build("lstm", (5, 4), 2, hidden_size=3, num_layers=1)
    assert script.rnn_macs(model.lstm, 5) == 5 * 84 == 420
    assert script.recurrent_macs(model, (5, 4)) == 420 + 3 * 2
    assert script.epoch_flops(model, (5, 4), examples=10) == (420 + 6) * 2 * 3 * 10


def test_blstm_flops_count_what_the_paper_head_computes():
    """Input 4, hidden 3, 2 layers, 5 steps. Layer 1: 84 MACs a step and direction; layer 2 reads both
    directions (6 wide): 4 x 3 x (6 + 3) = 108. Head 6 -> 2."""
    script = load_script()
    paper = build("blstm", (5, 4), 2, hidden_size=3, num_layers=2, head="paper")
    full = 2 * 5 * 84 + 2 * 5 * 108 + 12
    computed = 2 * 5 * 84 + 5 * 108 + 1 * 108 + 12  # top layer: 5 forward steps, ONE reverse step
    assert script.recurrent_macs(paper, (5, 4)) == computed
    assert script.recurrent_macs(paper, (5, 4), computed_only=False) == full
    final = build("blstm", (5, 4), 2, hidden_size=3, num_layers=2, head="final")  # runs the whole nn.LSTM
    assert script.recurrent_macs(final, (5, 4)) == full
    paper.skip_unused_steps = False
    assert script.recurrent_macs(paper, (5, 4)) == full
    assert script.rnn_macs(paper.lstm, 5, top_reverse_steps=1) == computed - 12


def test_gru_flops():
    script = load_script()
    model = build("gru", (5, 4), 2, hidden_size=3, num_layers=1)
    assert script.recurrent_macs(model, (5, 4)) == 5 * 3 * 3 * (4 + 3) + 3 * 2


def test_conv_flops():
    """An 8x8 image: conv1 (1 -> 32, 5x5, padding 2) gives 8x8; pooled to 4x4, conv2 (32 -> 64) gives 4x4;
    pooled to 2x2, fc1 64*2*2 -> 5, fc2 5 -> 3."""
    script = load_script()
    model = build("cnn", (8, 8), 3, hidden_size=5)
    sizes = script.conv_output_sizes(model, (8, 8))
    assert sizes == {model.conv1: (8, 8), model.conv2: (4, 4)}
    conv1, conv2 = 32 * 1 * 5 * 5 * 8 * 8, 64 * 32 * 5 * 5 * 4 * 4
    assert script.feedforward_macs(model, (8, 8)) == conv1 + conv2 + 64 * 2 * 2 * 5 + 5 * 3
    assert script.epoch_flops(model, (8, 8), 7) == (conv1 + conv2 + 1280 + 15) * 6 * 7
    mlp = build("mlp", (8, 8), 3, hidden_size=5, num_layers=2)
    assert script.feedforward_macs(mlp, (8, 8)) == 64 * 5 + 5 * 5 + 5 * 3


def test_matmul_rate():
    script = load_script()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rate = script.matmul_rate(32, torch.bfloat16, repeats=2)
    finally:
        torch.set_num_threads(threads)
    assert rate["dtype"] == "bfloat16" and "torch.mm" in rate["kernels"]
    assert rate["gflops"] == max(kernel["gflops"] for kernel in rate["kernels"].values())
    for kernel in rate["kernels"].values():
        assert len(kernel["seconds"]) == 2
        assert kernel["gflops"] == pytest.approx(2 * 32 ** 3 / min(kernel["seconds"]) / 1e9)


def test_matmul_kernels_compute_the_product():
    for dtype in (torch.float32, torch.bfloat16):
        kernels = load_script().matmul_kernels(16, dtype)
        results = [kernel() for kernel in kernels.values()]
        results = [r.to_dense() if r.layout == torch._mkldnn else r for r in results]
        for result in results[1:]:
            assert torch.allclose(result.float(), results[0].float(), rtol=0.02, atol=0.5)


def test_peak_memory_reads_the_runs_peak_rss(tmp_path, capsys):
    data_dir, out = tmp_path / "data", tmp_path / "memory.json"
    data_dir.mkdir()
    write_synthetic_idx(data_dir, train=100, test=20)
    script = load_script(BENCHMARKS / "peak_memory.py", "peak_memory_benchmark")
    code = script.main(["--data-dir", str(data_dir), "--models", "mlp", "--batch-size", "50", "--train-limit", "100",
                        "--threads", "1", "--json", str(out)])
    assert code == 0  # far below the limit
    (row,) = json.loads(out.read_text())["results"]
    assert row["exit_code"] == 0 and row["micro_batch"] == 100 and row["examples"] == 100
    assert 0 < row["peak_rss_mb"] <= row["wait4_peak_rss_mb"] + 1
    assert row["est_full_data_mb"] == pytest.approx(row["peak_rss_mb"] + 59900 * 28 * 28 * 4 / 2 ** 20)
    assert "| mlp | 50 | 100 | 100 |" in capsys.readouterr().out
