"""Where and how a run computes: the device, threads, determinism, precision (autocast) and seeding."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError
from digitlab.perf.machine import cpu_computes_bf16, onednn_max_isa, onednn_runs_bf16_lstm, physical_cores
from digitlab.training.distributed import Context

# On the CPU, forward/backward passes over 100 examples at a time run about 1.6-1.8x faster than over
# 500-1000 (the recurrent and convolution workspaces then stay in cache; benchmarks/epoch_time.py
# measures it). The step's gradient is the same sum, in another rounding order.
CPU_MICRO_BATCH = 100
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # fp32 runs without autocast


def parse_device(name: str) -> torch.device:
    """The device a --device value names, without touching it; ConfigError when digitlab cannot use it."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu or cuda[:N]")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


def resolve_device(name: str, context: Context) -> torch.device:
    """parse_device, then this process's own GPU under torchrun (one GPU per local rank)."""
    device = parse_device(name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", context.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes in bf16 natively; elsewhere bf16 is emulated and slower than fp32
    (2-3x on an AVX-512 CPU without AVX512_BF16)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)  # Ampere and newer compute it natively
    return cpu_computes_bf16()


def resolve_precision(precision: str, device: torch.device, log) -> str:
    """--precision auto -> bf16 where it is native, else fp32; an explicit bf16 where it is not, with a warning."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and not native_bf16(device):
        narrowed = onednn_max_isa() if device.type == "cpu" else None
        why = (
            f"oneDNN narrowed to {narrowed}"
            if narrowed
            else "no AVX512_BF16 or AMX"
            if device.type == "cpu"
            else "it is older than Ampere"
        )
        kernels = (
            ""
            if device.type == "cuda" or onednn_runs_bf16_lstm()
            else ", on PyTorch's own kernels (oneDNN has no bf16 LSTM below AVX-512)"
        )
        log(
            f"warning: this {device.type.upper()} computes no bf16 natively ({why}): --precision bf16 will run "
            f"slower than fp32 here{kernels}; --precision auto picks the faster one"
        )
    return precision


def micro_batch(config: TrainConfig, device: torch.device, batch_statistics: bool) -> int:
    """--micro-batch, where 0 means CPU_MICRO_BATCH on the CPU and the whole batch on a GPU, and the whole
    batch for a model with batch statistics (batch norm), whose result depends on how the batch is cut."""
    if config.micro_batch:
        return config.micro_batch
    return CPU_MICRO_BATCH if device.type == "cpu" and not batch_statistics else config.batch_size


def configure(config: TrainConfig, context: Context) -> None:
    """Threads and determinism for this process."""
    # Processes on one machine share its cores.
    torch.set_num_threads(config.threads or max(1, physical_cores() // context.local_world_size))
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS is deterministic only with it
    # Setting it imports torch._dynamo (about 2 s per process): only when it changes.
    if torch.are_deterministic_algorithms_enabled() != config.deterministic:
        torch.use_deterministic_algorithms(config.deterministic)
    torch.backends.cudnn.deterministic = config.deterministic
    torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def autocast(device: torch.device, precision: str):
    """The forward pass's context: nothing for fp32, torch.autocast for bf16 and fp16.

    Where oneDNN cannot run a bf16 LSTM (CPUs below AVX-512), bf16 forward passes of every model run without
    oneDNN, on PyTorch's own kernels: the LSTMs then run at all, and the other models lose nothing measurable
    (under ONEDNN_MAX_CPU_ISA=AVX2, one bf16 step of 100 examples, 1 thread, oneDNN / PyTorch's kernels: cnn
    2.8 / 2.6 s, vgg 0.73 / 0.66 s, gru 0.79 / 0.78 s, mlp 18 / 22 ms; both far slower than fp32, which
    resolve_precision warns of). The backward pass follows whichever kernels the forward used."""
    if precision == "fp32":
        yield
        return
    without_onednn = device.type == "cpu" and precision == "bf16" and not onednn_runs_bf16_lstm()
    onednn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = onednn and not without_onednn
    try:
        with torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision]):
            yield
    finally:
        torch.backends.mkldnn.enabled = onednn


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
