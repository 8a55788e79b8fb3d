"""The step loop: one epoch of optimizer steps. The only backward() and step() in digitlab.

train_epoch reads as any PyTorch training loop does (for each batch: forward, loss, backward, step); what
happens around the steps (the divergence check and its late undo, the epoch clock, the mid-epoch evaluation,
checkpoint and stop, the step rows) is epoch_pass.EpochPass's. Also here: forward_backward (a step's batch in
micro-batches), summed_loss (the loss of digits and, with --negatives, of non-digits), optimizer_step, warm_up
(a process's first pass, timed apart), and the augmentation a config asks for (augmentation_of, BACKGROUND).

A bad update never survives in the weights: a non-finite loss or gradient, or a loss above the session's
limit (divergence_factor x the chance-level loss), on any process, stops the run with the weights the step
started from checkpointed: before optimizer.step() by default, or by undoing it when --check-every N reads
the verdicts only every N steps (training.guard).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from digitlab.data import augment
from digitlab.data.dataset import MNIST_MEAN, MNIST_STD, NOT_A_DIGIT
from digitlab.perf.timer import Stopwatch
from digitlab.schedules import learning_rate
from digitlab.store.checkpoint import random_states, set_random_states
from digitlab.training.device import autocast
from digitlab.training.epoch_pass import EpochPass, Probe
from digitlab.training.session import Position, Session

BACKGROUND = (0.0 - MNIST_MEAN) / MNIST_STD  # a blank pixel after normalisation: what augmentation fills in
# The weight of a non-digit's loss against a digit's: Hendrycks et al.'s outlier exposure uses 0.5.
NEGATIVE_WEIGHT = 0.5


def train_epoch(
    session: Session, images: torch.Tensor, labels: torch.Tensor, position: Position, bar, probe: Probe | None = None
) -> list[float]:
    """Train from position.step to the epoch's end, a stop, or a probe that asks to end (position.step then
    falls short of the epoch's steps); return the step losses taken."""
    epoch = EpochPass(session, images, position, augmentation_of(session.config), bar, probe)
    session.wrapped.train()
    epoch.clock.start()
    for step in range(position.step, epoch.steps):
        epoch.guard.keep(step)  # --check-every N > 1: the state this step starts from, to undo it if found bad
        set_learning_rate(session, position.global_step, epoch.total_steps)
        index, grids, count = epoch.batch(step)
        session.optimizer.zero_grad(set_to_none=True)
        loss = forward_backward(session, images, labels, index, grids, count)
        gradients, grad_norm = unscaled_gradients(session)
        verdict = epoch.judge(step, loss, grad_norm)  # an unsound step read now raises, before its update
        optimizer_step(session, gradients, grad_norm)
        epoch.step_taken(step)
        verdict = epoch.check_late(step, verdict)  # an unsound step read now is undone, then raises
        if epoch.between_steps(verdict):  # evaluation, checkpoint, stop: the clock paused
            break  # the evaluation ended the epoch here
    return epoch.finish()


def set_learning_rate(session: Session, global_step: int, total_steps: int) -> None:
    """The schedule's rate for this step: a pure function of the step, so a resumed run sets the same."""
    config = session.config
    for group in session.optimizer.param_groups:
        group["lr"] = learning_rate(config.schedule, config.lr, global_step, total_steps, config.warmup)


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
            chunk_loss = summed_loss(logits, labels[chunk], config) * (context.world_size / count)
            (session.scaler.scale(chunk_loss) if session.scaler is not None else chunk_loss).backward()
        loss += chunk_loss.detach()
    return loss


def summed_loss(logits: torch.Tensor, labels: torch.Tensor, config) -> torch.Tensor:
    """The batch's summed loss: cross-entropy for digits (with --label-smoothing); with --negatives, a non-digit's
    (label NOT_A_DIGIT) is NEGATIVE_WEIGHT x its cross-entropy to the uniform distribution less ln(classes) (the
    KL divergence, 0 when every class is equally likely: outlier exposure), computed without a data-dependent
    shape, so no device synchronisation."""
    logits = logits.float()
    if not config.negatives:  # exactly the digit-only loss runs computed before --negatives existed
        return F.cross_entropy(logits, labels, reduction="sum", label_smoothing=config.label_smoothing)
    digit = labels != NOT_A_DIGIT
    per_digit = F.cross_entropy(
        logits, labels.clamp(min=0), reduction="none", label_smoothing=config.label_smoothing
    )  # the clamp gives a non-digit a stand-in class, its loss replaced below
    to_uniform = torch.logsumexp(logits, dim=1) - logits.mean(dim=1) - math.log(logits.shape[1])
    return torch.where(digit, per_digit, NEGATIVE_WEIGHT * to_uniform).sum()


def unscaled_gradients(session: Session) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The step's gradients (unscaled first under fp16) and their total norm, which the guard judges and
    --grad-clip clips by."""
    if session.scaler is not None:
        session.scaler.unscale_(session.optimizer)
    gradients = [p.grad for p in session.model.parameters() if p.grad is not None]
    return gradients, torch.nn.utils.get_total_norm(gradients)


def optimizer_step(session: Session, gradients: list[torch.Tensor], grad_norm: torch.Tensor) -> None:
    """Clip (--grad-clip), update the weights (through the grad scaler under fp16), then their moving average."""
    if session.config.grad_clip:
        torch.nn.utils.clip_grads_with_norm_(gradients, session.config.grad_clip, grad_norm)
    if session.scaler is not None:
        session.scaler.step(session.optimizer)
        session.scaler.update()
    else:
        session.optimizer.step()
    if session.average is not None:
        session.average.update(session.model)


def gradient_sync(session: Session, last: bool):
    """Under DDP, all-reduce gradients on a step's last micro-batch only."""
    if last or not session.context.enabled:
        return contextlib.nullcontext()
    return session.wrapped.no_sync()


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
    clock = Stopwatch(device).start()
    with autocast(device, config.precision):
        logits = session.model(images[:count])
    summed_loss(logits, labels[:count], config).backward()
    seconds = clock.stop()
    session.optimizer.zero_grad(set_to_none=True)
    set_random_states(saved_tensors, saved_info)
    with torch.no_grad():
        for name, buffer in session.model.named_buffers():
            buffer.copy_(saved_buffers[name])
    return seconds
