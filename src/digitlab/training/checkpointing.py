"""Checkpointing a training session and resuming it, for one process or every DDP process.

A checkpoint (see store.checkpoint) holds everything a run needs to go on: model and optimizer state, the
weights' moving average (--ema-decay), the Position, and the random states of Python, NumPy, torch and CUDA,
of every process. The trainer writes one at each epoch end, every --checkpoint-every steps, and when a signal
or a divergence stops it. Resuming loads the newest whole one and cuts the run's records back to it
(store.resume.tidy).
"""

from __future__ import annotations

import dataclasses

from digitlab.errors import RunError
from digitlab.perf.timer import Stopwatch
from digitlab.store import checkpoint, rundir
from digitlab.store.files import append_rows
from digitlab.store.resume import tidy
from digitlab.training import distributed
from digitlab.training.session import Position, Session


def save(session: Session, position: Position, overwrite: bool = True) -> None:
    """Checkpoint the session at `position`. Every rank calls this (it gathers the random states of all
    ranks); rank 0 writes. overwrite=False keeps an existing checkpoint of the same global step."""
    context, device = session.context, session.device
    clock = Stopwatch().start()  # host seconds: the write's own (the trainer's clock is paused around it)
    states = distributed.gather(checkpoint.rank_random_states(device), context, device) if context.enabled else []
    if not context.is_main:
        return
    folder = session.run_dir / rundir.CHECKPOINTS
    if not overwrite and checkpoint.checkpoint_path(folder, position.global_step).exists():
        return
    extra = {
        "scaler": session.scaler.state_dict() if session.scaler is not None else None,
        "world_size": context.world_size,
        "average_updates": session.average.updates if session.average is not None else None,
    }
    others = {f"rank{rank}.{name}": value for rank, state in enumerate(states) if rank for name, value in state.items()}
    if session.average is not None:  # the weights' moving average goes on from where it was
        others |= {f"average.{name}": value for name, value in session.average.state().items()}
    checkpoint.save_checkpoint(
        folder, session.model, session.optimizer, dataclasses.asdict(position), session.config.keep_checkpoints,
        extra, others,
    )  # fmt: skip
    append_rows(
        session.run_dir / rundir.CHECKPOINT_LOG,
        [{"global_step": position.global_step, "seconds": clock.stop()}],
    )


def restore(session: Session, log) -> Position | None:
    """Load the newest whole checkpoint of the session's run into it and cut the run's records back to
    it; return its Position. None when the run has no checkpoint yet (it was stopped before its first
    one): it then starts from the beginning, which its seed alone decides."""
    run_dir, context, device = session.run_dir, session.context, session.device
    folder = run_dir / rundir.CHECKPOINTS
    found = checkpoint.list_checkpoints(folder)
    loaded = checkpoint.load_latest(folder, log=log)
    if found and loaded is None:
        raise RunError(
            f"none of the {len(found)} checkpoints in {folder} can be read, so the run cannot be resumed; "
            f"start a new run"
        )
    saved = loaded[1]["progress"] if loaded else {"epoch": 0, "global_step": 0}
    if not distributed.all_equal(saved["global_step"] if loaded else -1, context, device):
        raise RunError(
            f"the processes found different checkpoints in {folder}; resuming under torchrun needs the run "
            f"directory on a file system that every node shares"
        )
    if context.is_main:
        tidy(run_dir, saved["epoch"], saved["global_step"], log)
    if loaded is None:
        log(f"{run_dir} has no checkpoint yet (it was stopped before its first one): starting it from the beginning")
        return None
    tensors, metadata = loaded
    checkpoint.load_state(session.model, session.optimizer, tensors, metadata)
    own = {name.split(".", 1)[1]: value for name, value in tensors.items() if name.startswith(f"rank{context.rank}.")}
    if context.rank and own:
        checkpoint.set_rank_random_states(own, device)
    if session.average is not None:
        average = {name[len("average.") :]: value for name, value in tensors.items() if name.startswith("average.")}
        session.average.load(average, metadata["extra"]["average_updates"])
    if session.scaler is not None and metadata["extra"].get("scaler"):
        session.scaler.load_state_dict(metadata["extra"]["scaler"])
    saved_world = metadata["extra"].get("world_size", 1)
    if saved_world != context.world_size:
        log(
            f"note: the checkpoint was written by {saved_world} process(es) and is resumed by {context.world_size}: "
            f"training goes on, but not bit-identically to an uninterrupted run"
        )
    position = Position.from_dict(saved)
    log(f"resuming {run_dir} at epoch {position.epoch + 1}, step {position.step} (global step {position.global_step})")
    return position
