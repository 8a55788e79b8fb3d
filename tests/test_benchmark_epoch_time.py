"""Smoke test: benchmarks/epoch_time.py runs end to end on a tiny synthetic IDX data set."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

from digitlab import idx

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "epoch_time.py"


def load_script():
    spec = importlib.util.spec_from_file_location("epoch_time_benchmark", SCRIPT)
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


def test_epoch_time_runs_and_reports_both_sides(tmp_path, capsys):
    data_dir, out = tmp_path / "data", tmp_path / "result.json"
    data_dir.mkdir()
    write_synthetic_idx(data_dir)

    threads = torch.get_num_threads()
    try:
        code = load_script().main(["--data-dir", str(data_dir), "--train-limit", "200", "--models", "lstm",
                                   "--batch-size", "50", "--warmup-steps", "1", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)  # the script sets it for the whole process

    assert code == 0
    result = json.loads(out.read_text())
    assert result["settings"]["examples"] == 200 and result["settings"]["steps"] == 4
    (row,) = result["results"]
    assert row["model"] == "lstm"
    for side in ("baseline", "digitlab"):
        assert row["sides"][side]["seconds"] > 0
        assert all(run["steps"] == 4 for run in row["sides"][side]["runs"])
    assert row["ratio"] > 0
    assert result["peak_rss_mb"] > 0
    printed = capsys.readouterr().out
    assert "| model | baseline s | digitlab s | ratio (digitlab/baseline) |" in printed
    assert "| lstm |" in printed
