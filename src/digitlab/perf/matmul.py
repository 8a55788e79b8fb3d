"""The machine's measured matmul rate (GFLOP/s), per dtype and per library: the speed a FLOP floor uses.

A floor (perf.flops' count / this rate) says how far a timing is from running its arithmetic at GEMM speed.
The rate is measured with the current torch threads, so set them first.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # digitlab's CPU precisions -> the matmul's dtype


def matmul_kernels(size: int, dtype: torch.dtype, seed: int = 0) -> dict[str, Callable[[], object]]:
    """The square matmuls to time, by the library that runs them. torch.mm's fp32 goes to MKL's sgemm, whose
    AVX-512 code paths are not used on every CPU (on AMD EPYC it ran at well under half of oneDNN's rate);
    the models' LSTM and convolution kernels are oneDNN's, so oneDNN's own matmul is timed too, when the
    build has it."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    kernels: dict[str, Callable[[], object]] = {"torch.mm": lambda: torch.mm(a, b, out=out)}
    if torch.backends.mkldnn.is_available():
        try:
            a_dnn, b_t_dnn = a.to_mkldnn(), b.t().contiguous().to_mkldnn()  # linear computes a @ weight.T
            torch.ops.aten.mkldnn_linear(a_dnn, b_t_dnn, None)  # fails here if unsupported
            kernels["oneDNN"] = lambda: torch.ops.aten.mkldnn_linear(a_dnn, b_t_dnn, None)
        except (RuntimeError, AttributeError, NotImplementedError):
            pass  # this build or CPU has no oneDNN matmul for the dtype: torch.mm alone counts
    return kernels


def time_matmul(kernel: Callable[[], object], size: int, repeats: int, warmup: int = 1) -> dict:
    """`repeats` timed runs after `warmup` untimed ones: GFLOP/s of the fastest (the floor is what the machine
    can do) and of the median, and per second of this process's CPU time, which waiting for a core does not
    lower (with several threads it is per core, and idle spinning lowers it)."""
    for _ in range(warmup):
        kernel()
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        cpu_started, started = time.process_time(), time.perf_counter()
        kernel()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    flops = 2 * size**3
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "gflops": flops / min(seconds) / 1e9,
        "gflops_median": flops / statistics.median(seconds) / 1e9,
        "gflops_per_cpu_second": flops / max(min(cpu_seconds), 1e-9) / 1e9,
    }


def matmul_rate(size: int, dtype: torch.dtype, repeats: int, warmup: int = 1) -> dict:
    """GFLOP/s of a (size x size) @ (size x size) matmul in `dtype` with the current threads, per library
    (matmul_kernels); "gflops" is the fastest library's rate and "kernel" its name."""
    by_kernel = {
        name: time_matmul(kernel, size, repeats, warmup) for name, kernel in matmul_kernels(size, dtype).items()
    }
    best = max(by_kernel, key=lambda name: by_kernel[name]["gflops"])
    return {
        "size": size,
        "dtype": str(dtype).removeprefix("torch."),
        "kernel": best,
        "gflops": by_kernel[best]["gflops"],
        "kernels": by_kernel,
    }


def matmul_rates(size: int, repeats: int, precisions: tuple[str, ...] = tuple(DTYPES)) -> dict[str, dict]:
    """matmul_rate for each precision (a key of DTYPES)."""
    return {precision: matmul_rate(size, DTYPES[precision], repeats) for precision in precisions}


def fastest(*measurements: dict[str, dict]) -> dict[str, float]:
    """Per precision, the best "gflops" of several matmul_rates results (say, before and after the models):
    the rate the machine showed it can reach."""
    return {precision: max(rates[precision]["gflops"] for rates in measurements) for precision in measurements[0]}


def describe(rates: dict[str, dict]) -> str:
    """One line: each precision's libraries and their GFLOP/s (and per CPU second)."""
    return "; ".join(
        f"{precision} "
        + ", ".join(
            f"{name} {k['gflops']:.1f} GFLOP/s ({k['gflops_per_cpu_second']:.1f} per CPU s)"
            for name, k in rate["kernels"].items()
        )
        for precision, rate in rates.items()
    )


def floor(flops: int | None, gflops: float, seconds: float) -> dict:
    """The floor of work of `flops` at `gflops` (flops / rate), and how many floors `seconds` took (x_floor);
    None where the FLOPs are unknown."""
    least = None if flops is None else flops / (gflops * 1e9)
    return {"gflops_rate": gflops, "seconds": least, "x_floor": None if least is None else seconds / least}


def before_after(before: dict[str, dict], after: dict[str, dict]) -> str:
    """Two matmul_rates results in one line: "fp32: torch.mm 204.0 / 202.4, oneDNN 427.6 / 453.2; bf16: ..."."""
    return "; ".join(
        f"{precision}: "
        + ", ".join(
            f"{name} {kernel['gflops']:.1f} / {after[precision]['kernels'][name]['gflops']:.1f}"
            for name, kernel in rate["kernels"].items()
        )
        for precision, rate in before.items()
    )
