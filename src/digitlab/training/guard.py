"""Whether each optimizer step was sound, read from the device at once or every --check-every steps.

A step is sound when its loss is finite and at most the session's loss limit and its gradient norm is finite;
no update of an unsound step may survive, and the run stops at the first one (epoch_pass.EpochPass.diverged).
StepGuard judges the steps of one epoch pass; a Verdict is what one reading of its verdicts found.

With --check-every 1 (the default) the verdict is read at once, before optimizer.step(). On a GPU such a read
is a host-device synchronisation: the CPU waits for the GPU to drain, and the GPU then idles while the CPU
queues the next step. With --check-every N > 1 the verdicts stay on the device, the state each unread step
starts from (weights, buffers, optimizer state, weight average) is copied on the device into a ring, and the
verdicts are read every N steps and before anything that needs them (a checkpoint, an evaluation, the
epoch's end, a stop). A bad step found then is undone by restoring the state it started from; the steps
queued after it are thrown away. That pays when the GPU, not the CPU's kernel launches, bounds a step; for
digitlab's small models on an H200 the ring's copies cost more than the synchronisation saved (0.81-0.88x,
benchmarks/step_check.py), hence the default. Under fp16 the grad scaler reads its own overflow check every
step anyway, so the guard reads at once there too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from digitlab.training import distributed
from digitlab.training.session import Session


@dataclass(frozen=True)
class Verdict:
    bad_step: int | None  # the first unsound step read (its state restored in deferred mode), or None
    stop: bool  # a stop signal reached this or another process


class StepGuard:
    """One per epoch pass of loop.train_epoch. Immediate mode: judge() returns the step's verdict. Deferred
    mode: keep() before the step, judge() records the verdict on the device, and after the optimizer's step
    read_if_due() returns a verdict when it reads (else None)."""

    def __init__(self, session: Session, steps: int):
        self.session = session
        device = session.device
        self.every = session.config.check_every  # at most this many steps of work are thrown away after a bad one
        self.deferred = self.every > 1 and session.scaler is None
        self.flags = torch.zeros(steps, 2, device=device)  # per step [unsound, stop], 1.0 = true on some rank
        self.grad_norms = torch.zeros(steps, device=device)  # for the message about a bad step found late
        self.first_unread: int | None = None  # the first step whose verdict has not been read
        self.ring: list[dict[tuple, torch.Tensor]] = []  # slot i: the state step first_unread + i started from
        self.updates: list[int] = []  # the weight average's update count at each slot

    # --- deferred mode -------------------------------------------------------------------------------------

    def keep(self, step: int) -> None:
        """Copy the state this step starts from into its ring slot (deferred mode only)."""
        if not self.deferred:
            return
        if self.first_unread is None:
            self.first_unread = step
        slot, state = step - self.first_unread, self.state()
        if slot < len(self.ring) and self.ring[slot].keys() == state.keys():
            torch._foreach_copy_(list(self.ring[slot].values()), list(state.values()))
        else:  # the first time, or the optimizer has made its state since: new buffers
            self.ring[slot:] = [{key: tensor.detach().clone() for key, tensor in state.items()}]
        average = self.session.average
        self.updates[slot:] = [average.updates if average is not None else 0]

    def read_if_due(self, step: int, force: bool) -> Verdict | None:
        """After step `step`'s update: read the unread verdicts when check_every steps are unread, when
        `force`d, or when this step made the optimizer's state (a bad first step could not be undone later)."""
        if not self.deferred:
            return None
        unread = step + 1 - self.first_unread
        grew = self.state().keys() != self.ring[unread - 1].keys()
        local_stop = bool(self.session.stop_signals) and not self.session.context.enabled  # ranks read in step
        if not (force or grew or local_stop or unread >= self.every):
            return None
        first, self.first_unread = self.first_unread, None
        flags = self.flags[first : step + 1].cpu()  # the one synchronisation per check_every steps
        bad = torch.nonzero(flags[:, 0] > 0).flatten()
        stop = bool(flags[:, 1].max() > 0) or local_stop
        if len(bad) == 0:
            return Verdict(None, stop)
        self.restore(int(bad[0]))
        return Verdict(first + int(bad[0]), stop)

    def restore(self, slot: int) -> None:
        """Put back the state ring slot `slot` holds; optimizer state made since is dropped."""
        kept, state = self.ring[slot], self.state()
        keys = list(kept)
        with torch.no_grad():
            torch._foreach_copy_([state[key] for key in keys], [kept[key] for key in keys])
        optimizer = self.session.optimizer
        for index, parameter in enumerate(self.session.model.parameters()):
            made = optimizer.state.get(parameter, {})
            for name in [name for name, value in made.items() if isinstance(value, torch.Tensor)]:
                if ("state", index, name) not in kept:
                    del made[name]
        if self.session.average is not None:
            self.session.average.updates = self.updates[slot]

    def state(self) -> dict[tuple, torch.Tensor]:
        """Every tensor a step changes: parameters, buffers, optimizer state, the weight average."""
        session = self.session
        state: dict[tuple, torch.Tensor] = {}
        for index, parameter in enumerate(session.model.parameters()):
            state["parameter", index] = parameter
            for name, value in session.optimizer.state.get(parameter, {}).items():
                if isinstance(value, torch.Tensor):
                    state["state", index, name] = value
        for name, buffer in session.model.named_buffers():
            state["buffer", name] = buffer
        if session.average is not None:
            for name, value in session.average.state().items():
                state["average", name] = value
        return state

    # --- both modes ----------------------------------------------------------------------------------------

    def judge(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor, stop: bool) -> Verdict | None:
        """The step's verdict before its update: returned at once in immediate mode (the same on every rank),
        recorded on the device in deferred mode (None)."""
        session = self.session
        sound = torch.isfinite(loss) & (loss <= session.loss_limit)
        if session.scaler is None:  # under fp16 the grad scaler skips steps with non-finite gradients itself
            sound &= torch.isfinite(grad_norm)
        if not self.deferred:
            # One all-reduce: every rank diverges, and stops, at the same step.
            bad, stop = distributed.any_rank([not bool(sound), stop], session.context, session.device)
            return Verdict(step if bad else None, stop)
        row = self.flags[step]
        row[0] = (~sound).float()
        row[1] = float(stop)
        self.grad_norms[step] = grad_norm.detach()
        distributed.max_in_place(row, session.context)  # NCCL queues it on the stream: no wait for the host
        return None
