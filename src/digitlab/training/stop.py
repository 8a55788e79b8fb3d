"""Stopping a training run on request: Ctrl-C (SIGINT) and SIGTERM caught while it trains (stop_requests), and
the error the run then ends with, naming the command that continues it (interrupted).

A signal does not end a training process at once: it asks the trainer to checkpoint at the next step boundary
(loop.train_epoch) or epoch end (fit) and stop there, every DDP process at the same step.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from digitlab.errors import Interrupted
from digitlab.training.session import Session


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


def interrupted(session: Session, where: str) -> Interrupted:
    """The error a stop request ends the run with: what stopped it, and the command that continues it."""
    name, context = (session.stop_signals[0] if session.stop_signals else None), session.context
    if not context.enabled:
        launcher = ""
    elif context.world_size == context.local_world_size:
        launcher = f"torchrun --nproc_per_node={context.local_world_size} -m "
    else:
        launcher = (
            f"torchrun --nnodes={context.world_size // context.local_world_size} --nproc_per_node="
            f"{context.local_world_size} (and your rendezvous flags) -m "
        )
    return Interrupted(
        f"stopped by {name or 'a signal to another process'} {where}; a checkpoint was written. "
        f"Continue with: {launcher}digitlab train --resume {session.run_dir}",
        name,
    )
