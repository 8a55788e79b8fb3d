"""perf.timer: a Stopwatch counts only the spans it runs (from seconds already counted), and stopping a
paused one changes nothing; Timer times a block with the same clock and reports CPU seconds beside it."""

from __future__ import annotations

import time

from digitlab.perf.timer import Stopwatch, Timer


def test_a_stopwatch_counts_only_its_running_spans():
    watch = Stopwatch(seconds=10.0)
    assert not watch.running and watch.stop() == 10.0  # stopping a paused watch counts nothing
    started = time.perf_counter()
    watch.start()
    time.sleep(0.05)
    first = watch.stop()
    time.sleep(0.2)  # paused: not counted
    watch.start()
    time.sleep(0.05)
    total = watch.stop()
    wall = time.perf_counter() - started
    assert 10.05 <= first < total <= 10.0 + wall - 0.2
    assert total >= 10.1 and watch.seconds == total and not watch.running


def test_a_timer_times_its_block():
    with Timer() as timer:
        time.sleep(0.05)
    result = timer.result()
    assert result["seconds"] >= 0.05 and result["cpu_seconds"] >= 0
    assert set(result) == {"seconds", "cpu_seconds", "cpu_stall_share"}
