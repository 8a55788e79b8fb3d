"""digitlab.perf.compare: sides alternate, medians and ratios to the baseline."""

from __future__ import annotations

import pytest
import torch

from digitlab.perf import compare


def fake_sides(times: dict[str, list[float]], order: list[str]) -> dict:
    """Sides that return the next of their given seconds, and note the order they ran in."""

    def side(name: str):
        def run() -> dict:
            order.append(name)
            return {"seconds": times[name][sum(1 for done in order if done == name) - 1], "cpu_stall_share": None}

        return run

    return {name: side(name) for name in times}


def test_sides_alternate_and_ratios_are_of_medians():
    order, seen = [], []
    times = {"base": [2.0, 4.0, 3.0], "a": [1.0, 1.0, 5.0], "b": [6.0, 6.0, 6.0]}
    result = compare.compare(fake_sides(times, order), 3, "base", on_run=lambda side, run: seen.append(side))
    assert order == seen == ["base", "a", "b", "b", "a", "base", "base", "a", "b"]
    assert {side: row["seconds"] for side, row in result["sides"].items()} == {"base": 3.0, "a": 1.0, "b": 6.0}
    assert result["ratios"] == {"a": pytest.approx(1 / 3), "b": pytest.approx(2.0)}
    runs = result["sides"]["a"]["runs"]
    assert [run["repeat"] for run in runs] == [1, 2, 3] and all("peak_rss_mb_after" in run for run in runs)


def test_a_change_of_threads_stops_the_comparison():
    threads = torch.get_num_threads()
    sides = {"base": lambda: {"seconds": 1.0}, "rude": lambda: torch.set_num_threads(threads + 1) or {"seconds": 1.0}}
    try:
        with pytest.raises(RuntimeError, match="threads changed"):
            compare.compare(sides, 2, "base", threads=threads)
    finally:
        torch.set_num_threads(threads)


def test_stall_shares_take_each_sides_worst_run():
    sides = {
        "a": {"runs": [{"cpu_stall_share": 0.01}, {"cpu_stall_share": 0.2}]},
        "b": {"runs": [{"cpu_stall_share": None}]},
        "c": {"runs": [{"cpu_stall_share": None}, {"cpu_stall_share": 0.05}]},
    }
    assert compare.stall_shares(sides) == {"a": 0.2, "c": 0.05}
