"""Side-by-side timings: several ways of doing the same work, run in turn in one process, compared by median.

Sides measured in one run on one machine share its state (its load, its clock, its caches), so their ratio
means more than either time alone; alternating their order spreads a drift of the machine over all of them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from digitlab.perf.machine import cpu_pressure, peak_rss_mb

Side = Callable[[], dict]  # one timed run -> a dict with "seconds" (perf.timer.Timer.result() and more)


def compare(
    sides: dict[str, Side],
    repeats: int,
    baseline: str,
    threads: int | None = None,
    on_run: Callable[[str, dict], None] | None = None,
) -> dict:
    """Run every side `repeats` times, the order reversed on every other repeat (A B C, C B A, ...).

    Each run's dict is recorded with its repeat number, the CPU pressure and this process's peak RSS after
    it, and handed to `on_run(side, run)` (progress lines). With `threads`, a run that finds torch using
    another number of threads stops the comparison: the sides would not be comparable.
    Returns {"sides": {side: {"seconds": the median, "runs": [...]}}, "ratios": {side: median / baseline's}}.
    """
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(repeats):
        for side in list(sides) if repeat % 2 == 0 else list(reversed(sides)):
            if threads is not None and torch.get_num_threads() != threads:
                raise RuntimeError(f"torch threads changed to {torch.get_num_threads()} (expected {threads})")
            run = sides[side]() | {"repeat": repeat + 1}
            run |= {"cpu_pressure_after": cpu_pressure(), "peak_rss_mb_after": round(peak_rss_mb(), 1)}
            runs[side].append(run)
            if on_run is not None:
                on_run(side, run)
    medians = {
        side: {"seconds": statistics.median(r["seconds"] for r in done), "runs": done} for side, done in runs.items()
    }
    base = medians[baseline]["seconds"]
    return {
        "sides": medians,
        "ratios": {side: row["seconds"] / base for side, row in medians.items() if side != baseline},
    }


def stall_shares(sides: dict[str, dict]) -> dict[str, float]:
    """Per side of compare()'s "sides", the largest share of a run's wall time in which some task waited for
    a CPU (Timer's cpu_stall_share); sides whose runs could not read it are left out."""
    return {
        side: max(r["cpu_stall_share"] or 0.0 for r in row["runs"])
        for side, row in sides.items()
        if any(r.get("cpu_stall_share") is not None for r in row["runs"])
    }
