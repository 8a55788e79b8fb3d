"""TensorBoard event files in a run directory (RUN/tensorboard/), beside its JSON-lines records, so that
`tensorboard --logdir runs` (or a reproduction's OUT/cells) shows every run's curves.

They are written when the `tensorboard` package is installed (`pip install 'digitlab[tensorboard]'`), by the
process that writes the run (rank 0 under torchrun), as its rows are written; nothing is written or printed
when it is not. DIGITLAB_TENSORBOARD=0 turns them off; DIGITLAB_TENSORBOARD=1 asks for them, so that a missing
package is then said (once, and training goes on). torch.utils.tensorboard is imported only here, lazily.

Every scalar is at the run's global step (optimizer steps taken), the x-axis that per-step and per-epoch
values share, under the names of the rows they come from:
  steps.jsonl       -> train/loss (the step's loss), lr (the schedule's learning rate for that step)
  metrics.jsonl     -> train/epoch_loss (the row's train/loss: the epoch's mean), train/seconds, eval/seconds,
                       setup/seconds, test/loss, test/acc, ema/test/*, cpu_pressure_avg10
  evaluations.jsonl -> val/loss, val/acc, ema/val/* (every validation evaluation, mid-epoch ones included)
  --test-eval final -> test/loss, test/acc (and ema/test/*) once, at the last step
A resumed run rewrites the event files from its records, which resuming has cut back to the checkpoint it
continues from: TensorBoard then never sees a step twice, nor the steps a killed process took after its last
checkpoint.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from digitlab.config import TrainConfig
from digitlab.schedules import learning_rate
from digitlab.store import rundir
from digitlab.store.files import read_rows

FOLDER = rundir.TENSORBOARD  # inside the run directory
SWITCH = "DIGITLAB_TENSORBOARD"  # 0: never write event files; 1: say so when they cannot be written; unset: auto
SKIPPED = {"epoch", "global_step", "step", "train_seconds"}  # positions, not measurements
RENAMED = {"train/loss": "train/epoch_loss"}  # the per-step train/loss keeps the plain name


def validation(key: str) -> bool:
    """val/acc, ema/val/loss, ...: a value measured on the validation split."""
    return "val" in key.split("/")[:-1]


class EventLog:
    """Scalars of one run into a SummaryWriter; call `close` when the run ends."""

    def __init__(self, writer, config: TrainConfig, total_steps: int):
        self.writer, self.config, self.total_steps = writer, config, total_steps

    def steps(self, rows: list[dict]) -> None:
        """steps.jsonl rows: each step's loss, and the learning rate that step used."""
        config = self.config
        for row in rows:
            step = row["global_step"]
            self.writer.add_scalar("train/loss", row["train/loss"], step)
            lr = learning_rate(config.schedule, config.lr, step - 1, self.total_steps, config.warmup)
            self.writer.add_scalar("lr", lr, step)

    def epoch(self, row: dict) -> None:
        """A metrics.jsonl row; its validation values come from the evaluation of the same step instead."""
        self._scalars(row, skip=validation)
        self.writer.flush()  # an epoch is what a live TensorBoard waits for

    def evaluation(self, row: dict) -> None:
        """An evaluations.jsonl row: val/* (and ema/val/*)."""
        self._scalars(row, skip=lambda key: not validation(key))
        self.writer.flush()

    def test(self, values: dict, global_step: int) -> None:
        """The test metrics evaluated once when the run ended (--test-eval final)."""
        self._scalars(values | {"global_step": global_step}, skip=lambda key: False)

    def _scalars(self, row: dict, skip) -> None:
        for key, value in row.items():
            if key in SKIPPED or skip(key) or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(RENAMED.get(key, key), value, row["global_step"])

    def close(self) -> None:
        self.writer.close()


def wanted(log=print) -> bool:
    """Whether to write event files: not when DIGITLAB_TENSORBOARD=0, nor without the tensorboard package."""
    setting = os.environ.get(SWITCH, "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it; only its presence is checked here)
    except ImportError:
        if setting in ("1", "true", "yes", "on"):
            log(f"note: {SWITCH}={setting} but the tensorboard package is not installed, so no event files are "
                f"written; pip install 'digitlab[tensorboard]'")  # fmt: skip
        return False
    return True


@contextlib.contextmanager
def opened(run_dir: Path, config: TrainConfig, global_step: int, total_steps: int, log=print):
    """An EventLog for the run in `run_dir` while the block runs (None when none is written), holding what its
    records say up to `global_step`, where training starts or resumes: earlier event files are replaced."""
    if not wanted(log):
        yield None
        return
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(run_dir) / FOLDER
    for old in folder.glob("events.out.tfevents.*") if folder.is_dir() else []:
        old.unlink()
    events = EventLog(SummaryWriter(str(folder)), config, total_steps)
    try:
        replay(events, Path(run_dir), global_step)
        yield events
    finally:
        events.close()


def replay(events: EventLog, run_dir: Path, global_step: int) -> None:
    """Write the run's records up to `global_step` (a resumed run's; a new run has none)."""
    events.steps([row for row in read_rows(run_dir / rundir.STEPS) if row["global_step"] <= global_step])
    # evaluations.jsonl is not cut back on resume: a killed process's later evaluations may be there, and the
    # same step evaluated again after it; the last row of each step up to the checkpoint is the one that stands.
    evaluations = {row["global_step"]: row for row in read_rows(run_dir / rundir.EVALUATIONS)}
    for step in sorted(evaluations):
        if step <= global_step:
            events.evaluation(evaluations[step])
    for row in read_rows(run_dir / rundir.METRICS):
        if row["global_step"] <= global_step:
            events.epoch(row)
