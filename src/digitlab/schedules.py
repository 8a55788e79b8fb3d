"""SCHEDULES: the learning rate at each optimizer step, as a pure function of the step.

The rate depends only on (config, step, total steps), never on a scheduler object's state, so a resumed
run sets exactly the rate an uninterrupted one would, and nothing about the schedule is checkpointed.
`total_steps` is the run's planned steps (epochs x steps per epoch): a schedule is laid over --epochs.

- constant: lr at every step (the paper's setting).
- onecycle: torch.optim.lr_scheduler.OneCycleLR's shape (cosine up from lr/25 over the warm-up fraction,
  default 0.25 when --warmup is 0; cosine down to lr/1e4 by the last step); a test checks it against torch.
- cosine: linear warm-up from 0 over the warm-up fraction, then cosine decay to 0 at the last step.
"""

from __future__ import annotations

import math

ONECYCLE_START_DIVISOR = 25.0  # OneCycleLR's div_factor: the first step's rate is lr / 25
ONECYCLE_FINAL_DIVISOR = 1e4  # OneCycleLR's final_div_factor: the last step's rate is (lr / 25) / 1e4
ONECYCLE_DEFAULT_WARMUP = 0.25  # OneCycleLR's pct_start, used when --warmup is 0


def _cosine(start: float, end: float, fraction: float) -> float:
    """From start (fraction 0) to end (fraction 1) along half a cosine, as OneCycleLR anneals."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


def constant(lr: float, step: int, total_steps: int, warmup: float) -> float:
    return lr


def onecycle(lr: float, step: int, total_steps: int, warmup: float) -> float:
    initial = lr / ONECYCLE_START_DIVISOR
    final = initial / ONECYCLE_FINAL_DIVISOR
    peak_step = float(warmup or ONECYCLE_DEFAULT_WARMUP) * total_steps - 1  # OneCycleLR's phase end
    if step <= peak_step:
        return _cosine(initial, lr, step / peak_step if peak_step > 0 else 1.0)
    return _cosine(lr, final, (step - peak_step) / max(total_steps - 1 - peak_step, 1e-12))


def cosine(lr: float, step: int, total_steps: int, warmup: float) -> float:
    warmup_steps = warmup * total_steps
    if step < warmup_steps:
        return lr * min(1.0, (step + 1) / warmup_steps)  # never 0: the first step already learns
    return _cosine(lr, 0.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))


SCHEDULES = {"constant": constant, "onecycle": onecycle, "cosine": cosine}


def learning_rate(schedule: str, lr: float, step: int, total_steps: int, warmup: float = 0.0) -> float:
    """The rate for optimizer step `step` (0-based, counted over the whole run) of `total_steps`."""
    return SCHEDULES[schedule](lr, step, total_steps, warmup)
