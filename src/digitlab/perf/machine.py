"""What machine a number was measured on: CPU model and features, cores, CPU pressure, memory, versions.

Timings differ by machine (bf16 is fast only where the CPU has it), and by how busy it was, so every
run and every benchmark records these beside its numbers.
"""

from __future__ import annotations

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
