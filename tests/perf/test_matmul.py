"""digitlab.perf.matmul: the measured matmul rate and the floor it gives."""

from __future__ import annotations

import pytest
import torch

from digitlab.perf import matmul


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_matmul_rate_is_the_fastest_library(one_thread):
    rate = matmul.matmul_rate(32, torch.bfloat16, repeats=2)
    assert rate["dtype"] == "bfloat16" and rate["size"] == 32 and "torch.mm" in rate["kernels"]
    assert rate["gflops"] == max(kernel["gflops"] for kernel in rate["kernels"].values())
    assert rate["gflops"] == rate["kernels"][rate["kernel"]]["gflops"]
    for kernel in rate["kernels"].values():
        assert len(kernel["seconds"]) == len(kernel["cpu_seconds"]) == 2
        assert kernel["gflops"] == pytest.approx(2 * 32**3 / min(kernel["seconds"]) / 1e9)
        assert kernel["gflops_median"] <= kernel["gflops"]


def test_matmul_kernels_compute_the_product():
    for dtype in (torch.float32, torch.bfloat16):
        results = [kernel() for kernel in matmul.matmul_kernels(16, dtype).values()]
        results = [r.to_dense() if r.layout == torch._mkldnn else r for r in results]
        for result in results[1:]:
            assert torch.allclose(result.float(), results[0].float(), rtol=0.02, atol=0.5)


def test_rates_per_precision_and_the_fastest_of_two_measurements(one_thread):
    before, after = matmul.matmul_rates(16, 1), matmul.matmul_rates(16, 1)
    assert set(before) == {"fp32", "bf16"} and before["bf16"]["dtype"] == "bfloat16"
    best = matmul.fastest(before, after)
    assert best == {p: max(before[p]["gflops"], after[p]["gflops"]) for p in ("fp32", "bf16")}
    line = matmul.before_after(before, after)
    assert line.startswith("fp32: torch.mm ") and "; bf16: torch.mm " in line and " / " in line
    assert "GFLOP/s" in matmul.describe(before)


def test_floor():
    assert matmul.floor(6 * 10**9, 2.0, 9.0) == {"gflops_rate": 2.0, "seconds": 3.0, "x_floor": 3.0}
    assert matmul.floor(None, 2.0, 9.0) == {"gflops_rate": 2.0, "seconds": None, "x_floor": None}
