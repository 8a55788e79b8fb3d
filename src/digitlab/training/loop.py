"""The step loop: one epoch of optimizer steps. The only backward() and step() in digitlab.

A bad update never survives in the weights: a non-finite loss or gradient, or a loss above the session's
limit (divergence_factor x the chance-level loss), on any process, stops the run with the weights the step
started from checkpointed: before optimizer.step() by default, or by undoing it when --check-every N reads
the verdicts only every N steps (training.guard).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from digitlab.data import augment
from digitlab.data.batching import batch_indices, epoch_order, num_batches
from digitlab.data.dataset import MNIST_MEAN, MNIST_STD
from digitlab.errors import Interrupted, TrainingError
from digitlab.perf.timer import synchronize
from digitlab.schedules import learning_rate
from digitlab.store import rundir
from digitlab.store.checkpoint import random_states, set_random_states
from digitlab.store.files import append_rows
from digitlab.training import checkpointing, distributed
from digitlab.training.device import autocast
from digitlab.training.guard import StepGuard
from digitlab.training.session import Position, Session

BACKGROUND = (0.0 - MNIST_MEAN) / MNIST_STD  # a blank pixel after normalisation: what augmentation fills in


# Called with the position after every --eval-every steps (the clock stopped); True ends the epoch there.
Probe = Callable[[Position], bool]


def train_epoch(
    session: Session, images: torch.Tensor, labels: torch.Tensor, position: Position, bar, probe: Probe | None = None
) -> list[float]:
    """Train from position.step to the epoch's end, a stop, or a probe that asks to end (position.step then
    falls short of the epoch's steps); return the step losses taken."""
    config, context, device = session.config, session.context, session.device
    # On the device once per epoch: a batch's indices copied from pageable host memory every step would make
    # the CPU wait for the GPU to drain (CUDA synchronises the stream before such a copy).
    order = epoch_order(len(images), config.seed, position.epoch).to(device)
    steps = num_batches(len(images), config.batch_size)
    total_steps = steps * config.epochs  # what the learning-rate schedule is laid over
    augmentation = augmentation_of(config)
    losses = torch.zeros(steps, device=device)  # filled on the device; read once, not every step
    guard = StepGuard(session, steps)
    first_step = position.step
    session.wrapped.train()
    synchronize(device)
    started = time.perf_counter()
    for step in range(first_step, steps):
        guard.keep(step)
        for group in session.optimizer.param_groups:
            group["lr"] = learning_rate(config.schedule, config.lr, position.global_step, total_steps, config.warmup)
        index = batch_indices(order, step, config.batch_size)  # the global batch
        count = len(index)
        grids = None
        if augmentation.enabled:  # drawn for the global batch, so that every process count sees the same images
            grids = augment.draw(augmentation, count, images.shape[1:], config.seed, position.epoch, step, device)
            grids = grids[context.rank :: context.world_size]
        index = index[context.rank :: context.world_size]  # this rank's share
        session.optimizer.zero_grad(set_to_none=True)
        loss = forward_backward(session, images, labels, index, grids, count)
        if session.scaler is not None:
            session.scaler.unscale_(session.optimizer)
        gradients = [p.grad for p in session.model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(gradients)
        losses[step] = loss.detach()
        # None while unread (--check-every N > 1)
        verdict = guard.judge(step, loss, grad_norm, bool(session.stop_signals))
        if verdict is not None and verdict.bad_step is not None:
            raise diverged(session, position, loss, grad_norm, losses, first_step)
        if config.grad_clip:
            torch.nn.utils.clip_grads_with_norm_(gradients, config.grad_clip, grad_norm)
        if session.scaler is not None:
            session.scaler.step(session.optimizer)
            session.scaler.update()
        else:
            session.optimizer.step()
        if session.average is not None:
            session.average.update(session.model)
        position.step, position.global_step = step + 1, position.global_step + 1
        if bar is not None:
            bar.update(1)
        due = config.checkpoint_every and position.global_step % config.checkpoint_every == 0
        probe_due = probe is not None and config.eval_every and position.global_step % config.eval_every == 0
        late = guard.read_if_due(step, force=bool(due or probe_due or position.step == steps))
        if late is not None:
            verdict = late
            if late.bad_step is not None:  # found after its update: undone, and the steps queued after it too
                position.global_step -= position.step - late.bad_step
                position.step = late.bad_step
                bad = late.bad_step
                raise diverged(session, position, losses[bad], guard.grad_norms[bad], losses, first_step)
        stop = verdict is not None and verdict.stop
        if (due or stop or probe_due) and position.step < steps:  # at the epoch's end, the epoch's own serve
            synchronize(device)
            position.epoch_seconds += time.perf_counter() - started
            if probe_due and probe(position):
                break
            if due or stop:
                record_steps(session, position, losses, first_step)
                first_step = position.step
                checkpointing.save(session, position)
            if stop:
                raise interrupted(session, f"at epoch {position.epoch + 1}, step {position.step}")
            synchronize(device)
            started = time.perf_counter()
    else:
        synchronize(device)
        position.epoch_seconds += time.perf_counter() - started
    return record_steps(session, position, losses, first_step)


def forward_backward(session: Session, images, labels, index: torch.Tensor, grids, count: int) -> torch.Tensor:
    """Forward and backward passes over this process's share of a step's batch, in micro-batches whose
    gradients add up to the whole batch's; return the batch's mean loss (on the device)."""
    config, context, device = session.config, session.context, session.device
    loss = torch.zeros((), device=device)
    chunks = index.split(config.micro_batch or len(index))
    grid_chunks = grids.split(config.micro_batch or len(index)) if grids is not None else [None] * len(chunks)
    for number, (chunk, grid) in enumerate(zip(chunks, grid_chunks)):
        batch = images[chunk] if grid is None else augment.apply(images[chunk], grid, BACKGROUND)
        with gradient_sync(session, number == len(chunks) - 1):
            with autocast(device, config.precision):
                logits = session.wrapped(batch)
            # Sum over the chunk, scaled so that the chunks, and DDP's mean over ranks, give the global
            # batch's mean loss.
            chunk_loss = F.cross_entropy(
                logits.float(), labels[chunk], reduction="sum", label_smoothing=config.label_smoothing
            ) * (context.world_size / count)
            (session.scaler.scale(chunk_loss) if session.scaler is not None else chunk_loss).backward()
        loss += chunk_loss.detach()
    return loss


def augmentation_of(config) -> augment.Augmentation:
    return augment.Augmentation(config.rotate, config.scale, config.shift, config.elastic)


def warm_up(session: Session, images: torch.Tensor, labels: torch.Tensor) -> float:
    """One forward/backward pass on a micro-batch whose gradient is thrown away; return its seconds.

    A process's first pass sets up kernels (oneDNN primitives, CUDA contexts and workspaces) and would
    otherwise be counted in its first epoch's training time. The random states are restored and the
    gradients discarded and the buffers (batch norm's statistics) put back, so the run computes exactly what
    it would have without this pass. The plain model runs it (not DDP's wrapper, whose hooks would all-reduce
    the gradients)."""
    config, device = session.config, session.device
    count = min(config.micro_batch or config.batch_size, config.batch_size, len(images))
    saved_tensors, saved_info = random_states()
    # Batch norm updates its running statistics in every training forward pass: they are put back too.
    saved_buffers = {name: buffer.clone() for name, buffer in session.model.named_buffers()}
    synchronize(device)
    started = time.perf_counter()
    with autocast(device, config.precision):
        logits = session.model(images[:count])
    F.cross_entropy(logits.float(), labels[:count]).backward()
    synchronize(device)
    seconds = time.perf_counter() - started
    session.optimizer.zero_grad(set_to_none=True)
    set_random_states(saved_tensors, saved_info)
    with torch.no_grad():
        for name, buffer in session.model.named_buffers():
            buffer.copy_(saved_buffers[name])
    return seconds


def gradient_sync(session: Session, last: bool):
    """Under DDP, all-reduce gradients on a step's last micro-batch only."""
    if last or not session.context.enabled:
        return contextlib.nullcontext()
    return session.wrapped.no_sync()


def record_steps(session: Session, position: Position, losses: torch.Tensor, first_step: int) -> list[float]:
    """Write the step rows taken since `first_step` (rank 0 only); return their losses."""
    taken = distributed.average(losses[first_step : position.step], session.context).tolist()
    for value in taken:  # one running sum, in step order: the same however checkpoints cut the epoch
        position.epoch_loss_sum += value
    position.last_finite_loss = taken[-1] if taken else position.last_finite_loss
    if session.context.is_main:
        base = position.global_step - len(taken)
        rows = [
            {"epoch": position.epoch + 1, "step": first_step + i + 1, "global_step": base + i + 1, "train/loss": value}
            for i, value in enumerate(taken)
        ]
        append_rows(session.run_dir / rundir.STEPS, rows)
        if session.events is not None:
            session.events.steps(rows)
    return taken


def diverged(
    session: Session, position: Position, loss: torch.Tensor, grad_norm: torch.Tensor, losses: torch.Tensor,
    first_step: int,
) -> TrainingError:  # fmt: skip
    """Record the steps taken, checkpoint the weights this step started from (if finite, and unless a
    checkpoint of that step exists: it is kept as it is), and build the error to raise."""
    record_steps(session, position, losses, first_step)
    finite = all(bool(torch.isfinite(p).all()) for p in session.model.parameters())  # the same on every rank
    if finite:
        checkpointing.save(session, position, overwrite=False)
    factor = session.config.divergence_factor
    what = (
        "the loss is not finite" if not torch.isfinite(loss)
        else f"the loss {float(loss):.4g} is above {session.loss_limit:.4g} ({factor:g} x the chance-level loss; "
        f"--divergence-factor 0 turns this check off)" if loss > session.loss_limit
        else "the gradient norm is not finite" if not torch.isfinite(grad_norm)
        else "another process's loss or gradient diverged"
    )  # fmt: skip
    last = f"{position.last_finite_loss:.4g}" if position.last_finite_loss is not None else "none yet"
    kept = (
        f"The weights before this step are checkpointed in {session.run_dir}."
        if finite
        else f"The weights before this step are not finite (the previous update overflowed) and were not "
        f"checkpointed; the newest checkpoint in {session.run_dir}, if any, is the last good state."
    )
    return TrainingError(
        f"training diverged at epoch {position.epoch + 1}, step {position.step + 1} (global step "
        f"{position.global_step + 1}): {what} (last finite loss {last}). {kept} "
        f"Try a lower learning rate in a new run, e.g. --lr {session.config.lr / 10:g}"
    )


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
