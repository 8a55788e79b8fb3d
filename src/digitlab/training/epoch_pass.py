"""One pass of loop.train_epoch over an epoch, and what happens around its steps.

EpochPass holds the pass's batch order, its step losses (kept on the device), the divergence guard, the epoch
clock (a Stopwatch that pauses between steps) and the first step whose row is not written yet. Its helpers
draw a step's batch, judge a step and undo one found bad late (raising the divergence error with the last
good weights checkpointed), write the step rows, and at a step boundary inside the epoch pause the clock for
the --eval-every evaluation, the --checkpoint-every checkpoint and a stop request. Probe is the evaluation's
type. (The steps themselves, forward to optimizer.step(), are loop.py's.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from digitlab.data import augment
from digitlab.data.batching import batch_indices, epoch_order, num_batches
from digitlab.errors import TrainingError
from digitlab.perf.timer import Stopwatch
from digitlab.store import rundir
from digitlab.store.files import append_rows
from digitlab.training import checkpointing, distributed
from digitlab.training.guard import StepGuard, Verdict
from digitlab.training.session import Position, Session
from digitlab.training.stop import interrupted

# Called with the position after every --eval-every steps (the clock stopped); True ends the epoch there.
Probe = Callable[[Position], bool]


class EpochPass:
    """One call of loop.train_epoch: from position.step to the epoch's end, a stop, or a probe that ends it."""

    def __init__(
        self, session: Session, images: torch.Tensor, position: Position, augmentation: augment.Augmentation, bar,
        probe: Probe | None,
    ):  # fmt: skip
        config, device = session.config, session.device
        self.session, self.position, self.augmentation, self.bar, self.probe = (
            session,
            position,
            augmentation,
            bar,
            probe,
        )
        self.image_shape = images.shape[1:]
        # On the device once per epoch: a batch's indices copied from pageable host memory every step would make
        # the CPU wait for the GPU to drain (CUDA synchronises the stream before such a copy).
        self.order = epoch_order(len(images), config.seed, position.epoch).to(device)
        self.steps = num_batches(len(images), config.batch_size)
        self.total_steps = self.steps * config.epochs  # what the learning-rate schedule is laid over
        self.losses = torch.zeros(self.steps, device=device)  # filled on the device; read once, not every step
        self.guard = StepGuard(session, self.steps)
        self.unrecorded = position.step  # the first step whose row is not written yet
        # Training seconds only: paused while the run evaluates or checkpoints; an epoch resumed goes on counting.
        self.clock = Stopwatch(device, position.epoch_seconds)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """This process's share of the step's batch: its indices, its augmentation grids (None without
        augmentation), and the size of the global batch."""
        session, context, config = self.session, self.session.context, self.session.config
        index = batch_indices(self.order, step, config.batch_size)  # the global batch
        count = len(index)
        grids = None
        if self.augmentation.enabled:  # drawn for the global batch, so that every process count sees the same images
            grids = augment.draw(
                self.augmentation, count, self.image_shape, config.seed, self.position.epoch, step, session.device
            )
            grids = grids[context.rank :: context.world_size]
        return index[context.rank :: context.world_size], grids, count

    # --- whether a step was sound: training.guard --------------------------------------------------------------

    def judge(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> Verdict | None:
        """Record the step's loss and judge it before its update: an unsound step read now raises the divergence
        error. None while the verdict stays unread (--check-every N > 1)."""
        self.losses[step] = loss.detach()
        verdict = self.guard.judge(step, loss, grad_norm, bool(self.session.stop_signals))
        if verdict is not None and verdict.bad_step is not None:
            raise self.diverged(loss, grad_norm)
        return verdict

    def check_late(self, step: int, verdict: Verdict | None) -> Verdict | None:
        """After the step's update, read the unread verdicts when due (always before a checkpoint, an evaluation
        or the epoch's end); the newest verdict read, or `verdict`. An unsound step found now was undone by the
        guard, and the steps queued after it with it: the position goes back to it and the run stops."""
        position = self.position
        force = self.checkpoint_due() or self.evaluation_due() or position.step == self.steps
        late = self.guard.read_if_due(step, force=bool(force))
        if late is None:
            return verdict
        if late.bad_step is not None:
            position.global_step -= position.step - late.bad_step
            position.step = bad = late.bad_step
            raise self.diverged(self.losses[bad], self.guard.grad_norms[bad])
        return late

    def step_taken(self, step: int) -> None:
        """Count the step whose update is in, and move the progress bar."""
        self.position.step, self.position.global_step = step + 1, self.position.global_step + 1
        if self.bar is not None:
            self.bar.update(1)

    # --- between steps -----------------------------------------------------------------------------------------

    def checkpoint_due(self) -> bool:
        every = self.session.config.checkpoint_every
        return bool(every) and self.position.global_step % every == 0

    def evaluation_due(self) -> bool:
        every = self.session.config.eval_every
        return self.probe is not None and bool(every) and self.position.global_step % every == 0

    def between_steps(self, verdict: Verdict | None) -> bool:
        """At a step boundary inside the epoch, with the clock paused: the --eval-every evaluation (True when it
        ends the epoch here), the --checkpoint-every checkpoint, and a stop request (checkpointed, then raised).
        At the epoch's end fit does all three."""
        stop = verdict is not None and verdict.stop
        evaluate, checkpoint = self.evaluation_due(), self.checkpoint_due()
        if self.position.step == self.steps or not (evaluate or checkpoint or stop):
            return False
        self.pause()
        if evaluate and self.probe(self.position):
            return True
        if checkpoint or stop:
            self.checkpoint()
        if stop:
            raise interrupted(self.session, f"at epoch {self.position.epoch + 1}, step {self.position.step}")
        self.clock.start()
        return False

    def pause(self) -> None:
        """Stop the clock (if running) and put the epoch's training seconds in the position."""
        self.position.epoch_seconds = self.clock.stop()

    def checkpoint(self) -> None:
        """Write the step rows taken so far, then checkpoint where the run stands."""
        self.record_steps()
        checkpointing.save(self.session, self.position)

    def finish(self) -> list[float]:
        """The pass has ended (the epoch's end, or a probe that ended it): the step losses of this pass's last rows."""
        self.pause()
        return self.record_steps()

    # --- records -----------------------------------------------------------------------------------------------

    def record_steps(self) -> list[float]:
        """Write the step rows taken since the last written (rank 0 only); return their losses."""
        session, position, first = self.session, self.position, self.unrecorded
        taken = distributed.average(self.losses[first : position.step], session.context).tolist()
        self.unrecorded = position.step
        for value in taken:  # one running sum, in step order: the same however checkpoints cut the epoch
            position.epoch_loss_sum += value
        position.last_finite_loss = taken[-1] if taken else position.last_finite_loss
        if session.context.is_main:
            base = position.global_step - len(taken)
            rows = [
                {"epoch": position.epoch + 1, "step": first + i + 1, "global_step": base + i + 1, "train/loss": value}
                for i, value in enumerate(taken)
            ]
            append_rows(session.run_dir / rundir.STEPS, rows)
            if session.events is not None:
                session.events.steps(rows)
        return taken

    def diverged(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> TrainingError:
        """Record the steps taken, checkpoint the weights this step started from (if finite, and unless a
        checkpoint of that step exists: it is kept as it is), and build the error to raise."""
        session, position = self.session, self.position
        self.record_steps()
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
