"""Checkpointing a training session, resuming it, and stop requests from signals.

A checkpoint (see digitlab.checkpoint) holds everything a run needs to go on: model and optimizer
state, the progress record (epoch, step within the epoch, global step, ...) and the random states of
Python, NumPy, torch and CUDA, of every process. The trainer writes one at each epoch end, every
--checkpoint-every steps, and when a signal or a divergence stops it. Resuming loads the newest whole
one and cuts the run's records back to it, so that they continue without duplicated or missing rows.

`session` below is a digitlab.train.Session.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

from digitlab import checkpoint, distributed, runs

CHECKPOINT_LOG = "checkpoints.jsonl"  # one row per checkpoint written: its global step and seconds


def save(session, progress: dict, overwrite: bool = True) -> None:
    """Checkpoint the session at `progress`. Every rank calls this (it gathers the random states of all
    ranks); rank 0 writes. overwrite=False keeps an existing checkpoint of the same global step."""
    context, device = session.context, session.device
    started = time.perf_counter()
    states = distributed.gather(checkpoint.rank_random_states(device), context, device) if context.enabled else []
    if not context.is_main:
        return
    folder = session.run_dir / runs.CHECKPOINTS
    if not overwrite and checkpoint.checkpoint_path(folder, progress["global_step"]).exists():
        return
    extra = {"scaler": session.scaler.state_dict() if session.scaler is not None else None,
             "world_size": context.world_size}
    others = {f"rank{rank}.{name}": value for rank, state in enumerate(states) if rank
              for name, value in state.items()}
    checkpoint.save_checkpoint(folder, session.model, session.optimizer, progress,
                               session.config.keep_checkpoints, extra, others)
    runs.append_rows(session.run_dir / CHECKPOINT_LOG, [
        {"global_step": progress["global_step"], "seconds": time.perf_counter() - started}])


def restore(session, log) -> dict | None:
    """Load the newest whole checkpoint of the session's run into it and cut the run's records back to
    it; return its progress record. None when the run has no checkpoint yet (it was stopped before its
    first one): it then starts from the beginning, which its seed alone decides."""
    run_dir, context, device = session.run_dir, session.context, session.device
    folder = run_dir / runs.CHECKPOINTS
    found = checkpoint.list_checkpoints(folder)
    loaded = checkpoint.load_latest(folder, log=log)
    if found and loaded is None:
        raise runs.RunError(f"none of the {len(found)} checkpoints in {folder} can be read, so the run cannot be "
                            f"resumed; start a new run")
    progress = loaded[1]["progress"] if loaded else {"epoch": 0, "global_step": 0}
    if not distributed.all_equal(progress["global_step"] if loaded else -1, context, device):
        raise runs.RunError(f"the processes found different checkpoints in {folder}; resuming under torchrun "
                            f"needs the run directory on a file system that every node shares")
    if context.is_main:
        tidy(run_dir, progress["epoch"], progress["global_step"], log)
    if loaded is None:
        log(f"{run_dir} has no checkpoint yet (it was stopped before its first one): starting it from the beginning")
        return None
    tensors, metadata = loaded
    checkpoint.restore(session.model, session.optimizer, tensors, metadata)
    own = {name.split(".", 1)[1]: value for name, value in tensors.items() if name.startswith(f"rank{context.rank}.")}
    if context.rank and own:
        checkpoint.set_rank_random_states(own, device)
    if session.scaler is not None and metadata["extra"].get("scaler"):
        session.scaler.load_state_dict(metadata["extra"]["scaler"])
    saved_world = metadata["extra"].get("world_size", 1)
    if saved_world != context.world_size:
        log(f"note: the checkpoint was written by {saved_world} process(es) and is resumed by {context.world_size}: "
            f"training goes on, but not bit-identically to an uninterrupted run")
    log(f"resuming {run_dir} at epoch {progress['epoch'] + 1}, step {progress['step']} "
        f"(global step {progress['global_step']})")
    return progress


def tidy(run_dir: Path, epoch: int, global_step: int, log) -> None:
    """Cut the run's records back to a checkpoint at (epoch, global_step) and clear away what a killed
    process left: temporary files of unfinished writes, and (renamed aside) unreadable newer checkpoints."""
    folder = run_dir / runs.CHECKPOINTS
    checkpoint.remove_temporaries(folder)
    checkpoint.remove_temporaries(run_dir)
    for path in checkpoint.list_checkpoints(folder):
        if int(checkpoint.CHECKPOINT_NAME.match(path.name).group(1)) > global_step:
            path.rename(path.with_name(path.name + ".damaged"))
            log(f"note: set aside the unreadable {path.name} as {path.name}.damaged")
    runs.truncate_rows(run_dir / runs.STEPS, lambda row: row["global_step"] <= global_step)
    runs.truncate_rows(run_dir / runs.METRICS, lambda row: row["epoch"] <= epoch)
    runs.truncate_rows(run_dir / CHECKPOINT_LOG, lambda row: row["global_step"] <= global_step)
    (run_dir / runs.RESULT).unlink(missing_ok=True)


@contextlib.contextmanager
def stop_requests(requests: list):
    """While the block runs, Ctrl-C (SIGINT) and SIGTERM append their names to `requests` instead of ending
    the process; the trainer then checkpoints at the next step boundary and stops. Handlers can only be
    set from the main thread: elsewhere, signals keep their usual effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(number, _frame):
        requests.append(signal.Signals(number).name)

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
