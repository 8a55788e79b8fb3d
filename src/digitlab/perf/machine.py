"""What machine a number was measured on: CPU model and features, what its kernels run (probed), cores,
CPU pressure, memory, versions.

Timings differ by machine (bf16 is fast only where the CPU has it), and by how busy it was, so every
run and every benchmark records these beside its numbers. CPU flags do not say everything: oneDNN and
ATen may be narrowed to an older instruction set (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY, the way a
developer imitates a laptop CPU), and oneDNN has no bf16 LSTM below AVX-512; `cpu_kernels` finds out by
asking torch and by running a tiny LSTM once per process.
"""

from __future__ import annotations

import functools
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

# CPU flags (as /proc/cpuinfo spells them) that decide which precision and kernels run fast.
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def physical_cores() -> int:
    """Physical cores this process may run on (hyperthreads share a core's arithmetic units)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores, processor, physical = set(), None, "0"
    for line in _cpuinfo_lines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            processor = int(value)
        elif key == "physical id":
            physical = value
        elif key == "core id" and processor in allowed:
            cores.add((physical, value))
    return len(cores) or len(allowed) or 1


def cpu_model() -> str:
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def cpu_features() -> dict[str, bool]:
    """Which of CPU_FEATURES this CPU has (all False where /proc/cpuinfo cannot be read)."""
    flags: set[str] = set()
    for line in _cpuinfo_lines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    return {name: name in flags for name in CPU_FEATURES}


# oneDNN's names (ONEDNN_MAX_CPU_ISA) for instruction sets without bf16 arithmetic: narrowed to one of these,
# oneDNN emulates bf16 even on a CPU whose flags have avx512_bf16.
ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def onednn_max_isa() -> str | None:
    """The instruction set oneDNN was narrowed to (ONEDNN_MAX_CPU_ISA, or its older name DNNL_MAX_CPU_ISA)."""
    value = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    return value if value not in ("", "ALL", "DEFAULT") else None


@functools.cache
def onednn_runs_bf16_lstm() -> bool:
    """Whether an LSTM runs in bf16 here: oneDNN has none below AVX-512 and raises "could not create a
    primitive descriptor". No flag predicts it under a narrowed ISA, so a tiny one runs, once per process:
    with gradients on (under inference mode a training LSTM would not run at all, and that answer would be
    cached) and on a forked random state (building it must not move the run's seeded generator)."""
    try:
        with torch.random.fork_rng(), torch.inference_mode(False), torch.enable_grad():
            lstm = torch.nn.LSTM(4, 4)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out, _ = lstm(torch.zeros(2, 1, 4))
            out.float().sum().backward()
    except RuntimeError:
        return False
    return True


def cpu_computes_bf16() -> bool:
    """Whether the CPU's kernels compute bf16 natively: the CPU has AVX512_BF16 or AMX, oneDNN is not narrowed
    below them, and a bf16 LSTM runs."""
    flags = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return flags and onednn_max_isa() not in ONEDNN_ISAS_WITHOUT_BF16 and onednn_runs_bf16_lstm()


def cpu_kernels() -> dict:
    """What torch's CPU kernels use here, found at run time: ATen's vector instruction set, what oneDNN was
    narrowed to (None: not narrowed), and the probes above."""
    return {
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": onednn_max_isa(),
        "onednn_bf16_lstm": onednn_runs_bf16_lstm(),
        "bf16_native": cpu_computes_bf16(),
    }


def cpu_pressure() -> str | None:
    """/proc/pressure/cpu's 'some' line: how much a busy neighbour was slowing this machine."""
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None


def cpu_pressure_avg10() -> float | None:
    """The share of the last 10 s (percent) in which some runnable task waited for a CPU."""
    line = cpu_pressure()
    if not line or "avg10=" not in line:
        return None
    return float(line.split("avg10=")[1].split()[0])


def cpu_stall_us() -> int | None:
    """/proc/pressure/cpu 'some' total: microseconds during which some task waited for a CPU."""
    line = cpu_pressure()
    if not line or "total=" not in line:
        return None
    return int(line.rpartition("total=")[2].split()[0])


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment(device: torch.device) -> dict:
    """The versions and hardware a run records in env.json."""
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_kernels": cpu_kernels(),
        "cpu_count": os.cpu_count(),
        "physical_cores": physical_cores(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "cpu_pressure": cpu_pressure(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["device_name"] = info["cpu"]
    return info
