"""Honest timing: the device synchronised before every clock read, and how busy the machine was.

Holds synchronize(), Stopwatch (wall seconds over spans, a clock that can pause: the trainer's epoch clock and
every other timed block of training) and Timer (one timed block for benchmarks: wall seconds by a Stopwatch,
CPU seconds, and the share of them the machine's tasks waited for a CPU).
"""

from __future__ import annotations

import gc
import time

import torch

from digitlab.perf.machine import cpu_stall_us


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: CUDA runs asynchronously, so a clock read before this lies."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall seconds over the spans between start() and stop(), the device synchronised at each, added to
    `seconds` (which may start from seconds already counted, e.g. by a resumed epoch). Between a stop() and the
    next start() the watch is paused: what runs then (a checkpoint, an evaluation) is not counted."""

    def __init__(self, device: torch.device | None = None, seconds: float = 0.0):
        self.device = device or torch.device("cpu")
        self.seconds = seconds
        self._started: float | None = None  # perf_counter() at the running span's start; None while paused

    @property
    def running(self) -> bool:
        return self._started is not None

    def start(self) -> Stopwatch:
        synchronize(self.device)
        self._started = time.perf_counter()
        return self

    def stop(self) -> float:
        """End the running span, if any, and return the seconds counted so far."""
        if self._started is not None:
            synchronize(self.device)
            self.seconds += time.perf_counter() - self._started
            self._started = None
        return self.seconds


class Timer:
    """Wall seconds of a block (device synchronised at both ends), and the share of them during which some
    task on the machine waited for a CPU: near 0 on a quiet machine; high means a neighbour competed. Also
    this process's CPU seconds (all its threads, idle-spinning ones included): not inflated by time spent
    waiting for a core, so a cross-check of the wall seconds when the machine is busy."""

    def __init__(self, device: torch.device | None = None):
        self.device = device or torch.device("cpu")

    def __enter__(self) -> Timer:
        gc.collect()
        synchronize(self.device)  # the work queued before the block is not the block's
        self.stall_before = cpu_stall_us()
        self.cpu_started = time.process_time()
        self.watch = Stopwatch(self.device).start()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = self.watch.stop()
        self.cpu_seconds = time.process_time() - self.cpu_started
        stall_after = cpu_stall_us()
        self.stall_share = (
            None
            if self.stall_before is None or stall_after is None
            else (stall_after - self.stall_before) / 1e6 / self.seconds
        )

    def result(self) -> dict:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "cpu_stall_share": self.stall_share}
