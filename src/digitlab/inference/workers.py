"""Preparing many pictures on every core: decoding and making them MNIST-like is pure Python, NumPy, SciPy and
Pillow work per file, much of it holding the GIL, so a pool of worker processes (not threads) does it while
the calling process runs the model.

Holds how many workers a list of files gets (worker_count: none below MIN_FILES_PER_WORKER files per worker,
where starting them costs more than they save) and the ordered map over a pool (in_order). Workers start from
a fork server (or are spawned where there is none), never forked from the caller: the caller has PyTorch
loaded, with its threads, and a worker needs none of it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MIN_FILES_PER_WORKER = 8  # a worker takes about a second of CPU to start (its imports): worth it from here
CHUNK = 4  # files sent to a worker at a time: few round trips, yet an even share at the end
PRELOAD = ["digitlab.inference.recognise"]  # what the fork server imports once for every worker


def cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(files: int, limit: int | None = None) -> int:
    """Worker processes for `files` pictures: one per core (at most `limit`), as long as each gets at least
    MIN_FILES_PER_WORKER; 0 (prepare them in this process) for one core or a few files."""
    count = min(cores() if limit is None else limit, files // MIN_FILES_PER_WORKER)
    return count if count >= 2 else 0


def _context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def in_order(function: Callable[[Item], Result], items: Iterable[Item], workers: int) -> Iterator[Result]:
    """function(item) for each item, in the items' order, computed by `workers` processes (in this process for
    0). `function` must be a module-level function, its items and results picklable."""
    if workers <= 0:
        yield from map(function, items)
        return
    with _context().Pool(workers) as pool:
        yield from pool.imap(function, items, chunksize=CHUNK)
