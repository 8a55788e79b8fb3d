"""benchmarks/checkpoint_overhead.py: whole fit() runs that differ only in --checkpoint-every train alike."""

from __future__ import annotations

import json


def test_checkpoint_overhead_compares_variants(load_script, tiny_data, tmp_path, capsys):
    out = tmp_path / "results"
    code = load_script("checkpoint_overhead").main(
        [
            "--data-dir",
            str(tiny_data),
            "--train-limit",
            "100",
            "--model",
            "mlp",
            "--batch-size",
            "20",
            "--every",
            "0,2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    (json_file,) = out.glob("checkpoint_overhead-*.json")
    result = json.loads(json_file.read_text())
    assert result["setup"]["steps"] == 5 and set(result["machine"]["cpu_features"]) >= {"avx2", "avx512_bf16"}
    epoch_end, every_two = result["variants"]
    assert (epoch_end["checkpoints"], every_two["checkpoints"]) == (1, 3)  # steps 2 and 4, then the epoch end
    assert epoch_end["weights_sha256"] == every_two["weights_sha256"]
    assert every_two["checkpoint_seconds"] > 0 and every_two["overhead_percent"] > 0
    markdown = json_file.with_suffix(".md").read_text()
    assert markdown in capsys.readouterr().out
    assert "| epoch end only | 1 |" in markdown and "| every 2 steps + epoch end | 3 |" in markdown
    assert "CPU features:" in markdown and "final weights identical across variants: yes" in markdown
