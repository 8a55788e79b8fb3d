"""Resuming a run directory: tidy() cuts a run's records back to the checkpoint it continues from, so that
they go on without duplicated or missing rows, and clears away what a killed process left.
(training.checkpointing writes and loads the checkpoints themselves, for every DDP process.)
"""

from __future__ import annotations

from pathlib import Path

from digitlab.store import rundir
from digitlab.store.checkpoint import CHECKPOINT_NAME, list_checkpoints
from digitlab.store.files import remove_temporaries, truncate_rows


def tidy(run_dir: Path, epoch: int, global_step: int, log) -> None:
    """Cut the run's records back to a checkpoint at (epoch, global_step) and clear away what a killed
    process left: temporary files of unfinished writes, and (renamed aside) unreadable newer checkpoints."""
    folder = run_dir / rundir.CHECKPOINTS
    remove_temporaries(folder)
    remove_temporaries(run_dir)
    for path in list_checkpoints(folder):
        if int(CHECKPOINT_NAME.match(path.name).group(1)) > global_step:
            path.rename(path.with_name(path.name + ".damaged"))
            log(f"note: set aside the unreadable {path.name} as {path.name}.damaged")
    truncate_rows(run_dir / rundir.STEPS, lambda row: row["global_step"] <= global_step)
    truncate_rows(run_dir / rundir.METRICS, lambda row: row["epoch"] <= epoch)
    truncate_rows(run_dir / rundir.CHECKPOINT_LOG, lambda row: row["global_step"] <= global_step)
    (run_dir / rundir.RESULT).unlink(missing_ok=True)
