"""Preparing pictures on several cores (digitlab.inference.workers): how many workers a list of files gets, and
an ordered map over worker processes that gives what the same map in this process gives."""

from __future__ import annotations

from digitlab.inference import workers


def test_a_worker_per_core_only_for_enough_files(monkeypatch):
    monkeypatch.setattr(workers, "cores", lambda: 4)
    per = workers.MIN_FILES_PER_WORKER
    assert workers.worker_count(1) == 0 and workers.worker_count(2 * per - 1) == 0  # not worth starting
    assert workers.worker_count(2 * per) == 2 and workers.worker_count(3 * per) == 3
    assert workers.worker_count(100 * per) == 4 and workers.worker_count(100 * per, limit=2) == 2
    monkeypatch.setattr(workers, "cores", lambda: 1)
    assert workers.worker_count(100 * per) == 0  # one core: no pool at all


def test_workers_answer_in_order_as_this_process_does():
    items = [-5, 3, -1, 0, 8, -2, 7, -9, 4]
    assert list(workers.in_order(abs, items, 2)) == list(workers.in_order(abs, items, 0)) == [abs(x) for x in items]
