"""Honest timing: synchronise the device before every clock read, and note how busy the machine was."""

from __future__ import annotations

import gc
import time

import torch

from digitlab.perf.machine import cpu_stall_us


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: CUDA runs asynchronously, so a clock read before this lies."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Wall seconds of a block (device synchronised at both ends), and the share of them during which some
    task on the machine waited for a CPU: near 0 on a quiet machine; high means a neighbour competed. Also
    this process's CPU seconds (all its threads, idle-spinning ones included): not inflated by time spent
    waiting for a core, so a cross-check of the wall seconds when the machine is busy."""

    def __init__(self, device: torch.device | None = None):
        self.device = device or torch.device("cpu")

    def __enter__(self) -> Timer:
        gc.collect()
        synchronize(self.device)
        self.stall_before = cpu_stall_us()
        self.cpu_started = time.process_time()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        stall_after = cpu_stall_us()
        self.stall_share = (
            None
            if self.stall_before is None or stall_after is None
            else (stall_after - self.stall_before) / 1e6 / self.seconds
        )

    def result(self) -> dict:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "cpu_stall_share": self.stall_share}
