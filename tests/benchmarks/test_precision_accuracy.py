"""benchmarks/precision_accuracy.py: fp32 and bf16 runs over seeds, one table row per model; reruns reuse runs."""

from __future__ import annotations


def test_precision_accuracy_tabulates_both_precisions(load_script, tiny_data, tmp_path, capsys):
    out = tmp_path / "runs"
    argv = [
        "--models",
        "mlp",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "50",
        "--data-dir",
        str(tiny_data),
        "--train-limit",
        "100",
        "--out",
        str(out),
    ]
    script = load_script("precision_accuracy")
    assert script.main(argv) == 0
    runs = sorted(path.name for path in out.iterdir())
    assert runs == ["mlp-bf16-s0", "mlp-bf16-s1", "mlp-fp32-s0", "mlp-fp32-s1"]
    printed = capsys.readouterr().out
    assert "CPU features:" in printed
    (row,) = [line for line in printed.splitlines() if line.startswith("| mlp |")]
    assert row.count("|") == 7 and row.rstrip(" |").endswith(("yes", "no"))

    finished = {name: (out / name / "result.json").stat().st_mtime_ns for name in runs}
    assert script.main(argv) == 0  # the finished runs are read back, not trained again
    assert finished == {name: (out / name / "result.json").stat().st_mtime_ns for name in runs}
    assert row in capsys.readouterr().out
