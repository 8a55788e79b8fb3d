"""A run directory's lock: one process at a time trains in a run directory.

`holding(run_dir)` takes an operating-system lock (`fcntl.flock`, exclusive, non-blocking) on the file
`.lock` inside the run directory for as long as its block runs, and writes the holder's pid and host
into that file. The kernel drops the lock when the holder's file descriptor closes, so any exit
releases it, `kill -9` and a crash included; nothing stale is left to clean up. The file itself stays
(deleting it on release would let two processes lock two different files of the same name); an old run
directory without one, or a copy with a stale one, simply gets the file on its next lock.

A second process is refused at once, before it reads or writes anything else of the run, with a
RunError naming the holder's pid. `fit()` holds the lock around a whole run (new or resumed); under
torchrun, rank 0 holds it, as rank 0 alone writes the run directory. On a network file system the lock
works as far as the file system supports locks (Linux NFS emulates flock with byte-range locks).

`waiting(path)` is the blocking kind, for a file that several processes update in turn (a reproduction's
manifest, written by every shard): it waits for the holder instead of refusing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

from digitlab.errors import RunError

LOCK = ".lock"  # inside the run directory; holds "<pid> <host>" of the process training in it


def holder(run_dir: Path) -> str | None:
    """Who last took the lock, as "pid N on HOST" (None when unknown). Says nothing about whether it is held."""
    try:
        pid, _, host = (Path(run_dir) / LOCK).read_text().strip().partition(" ")
    except OSError:
        return None
    if not pid.isdigit():
        return None
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


@contextlib.contextmanager
def holding(run_dir: Path):
    """Hold `run_dir`'s lock while the block runs (making the folder if needed); RunError if another process
    holds it, or if the folder cannot be written."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise RunError(
            f"cannot write the run directory {run_dir}: {error.strerror or error}; choose a writable --run-dir"
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(run_dir) or "another process"
            raise RunError(
                f"{run_dir} is in use: digitlab {who} is training in it; wait for that process to end "
                f"(or stop it), then try again"
            ) from None
        except OSError as error:  # e.g. a network file system without locks
            raise RunError(f"cannot lock {run_dir / LOCK}: {error.strerror or error}") from None
        try:
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except OSError as error:
            raise RunError(f"cannot write {run_dir / LOCK}: {error.strerror or error}") from None
        yield
    finally:
        os.close(handle)  # releases the lock


@contextlib.contextmanager
def waiting(path: Path):
    """Hold an exclusive lock on the file `path` while the block runs, waiting for the current holder first:
    for the short read-modify-write of a file that several processes share (a reproduction's manifest, which
    every shard of an array job updates). The file is made if missing and stays, as for `holding`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise RunError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as error:  # e.g. a network file system without locks
            raise RunError(f"cannot lock {path}: {error.strerror or error}") from None
        yield
    finally:
        os.close(handle)  # releases the lock
