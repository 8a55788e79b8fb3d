"""benchmarks/speedrun_levers.py: every lever setting is timed in rounds that alternate, the ratios are against the
fast recipe's setting (vgg, NCHW, fp32, all threads), the layouts are what they say, bf16 rows appear only where
the CPU computes bf16, and the report is written."""

from __future__ import annotations

import json

import pytest
import torch


def test_every_setting_is_timed_in_alternating_rounds_against_vgg_nchw_fp32(load_script, tiny_data, tmp_path):
    script = load_script("speedrun_levers")
    argv = ["--steps", "2", "--rounds", "2", "--warmup", "1", "--no-compile", "--data-dir", str(tiny_data)]
    assert script.main([*argv, "--out", str(tmp_path), "--stem", "levers"]) == 0
    result = json.loads((tmp_path / "levers.json").read_text())
    rows = result["rows"]
    assert (rows[0]["model"], rows[0]["layout"], rows[0]["precision"], rows[0]["ratio"]) == ("vgg", "NCHW", "fp32", 1.0)
    assert all(len(row["rounds"]) == 2 and row["images_per_second"] > 0 for row in rows)
    assert {(row["model"], row["layout"]) for row in rows} >= {("speedcnn", "channels-last"), ("speedcnn", "NCHW")}
    assert any(row["precision"] == "bf16" for row in rows) == script.cpu_computes_bf16()
    assert "inductor" not in {row["compiled"] for row in rows}  # --no-compile
    assert "| speedcnn | channels-last | fp32 | eager |" in (tmp_path / "levers.md").read_text()


@pytest.mark.parametrize("layout, channels_last", [("NCHW", False), ("channels-last", True)])
def test_a_settings_layout_is_the_one_named(load_script, layout, channels_last):
    setting = load_script("speedrun_levers").Setting("speedcnn", layout, "fp32", False, 1)
    weight = setting.model.features[4].weight  # 16 -> 32 channels: the two layouts differ
    assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
