"""Several run directories read side by side, for `digitlab compare` (one run's files are store.rundir's):
each run's config, per-epoch rows, step losses and result (Run, read_run, read_runs, labels), the config fields
in which the runs differ (differing), each run's curves (curves), the comparison's title (title) and the
folder its figure goes to (figure_folder).

(Not perf.compare, which times several ways of doing one piece of work in one process.)

An unfinished run (no result.json: still training, stopped, or killed) is compared with what it has, and marked
unfinished: its numbers are those of its last finished epoch. A folder that holds no run is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from digitlab.errors import ConfigError, RunError
from digitlab.store import rundir
from digitlab.store.files import read_json, read_rows

UNCOMPARED = {"run_dir", "progress"}  # config fields that name the run or change nothing it measures
FINAL = ("train/loss", "val/acc", "ema/val/acc", "test/acc", "ema/test/acc")  # from the last epoch row


@dataclass
class Run:
    path: Path
    label: str  # the folder's name, with as many parent folders as tell it apart from the others
    config: dict  # the run's TrainConfig as a dict (fields newer than the run: their defaults)
    epochs: list[dict]  # metrics.jsonl
    steps: list[dict]  # steps.jsonl
    result: dict | None  # result.json; None while the run is unfinished

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def steps_per_epoch(self) -> int | None:
        """Optimizer steps in one epoch (from the first epoch's row); None before an epoch has finished."""
        return self.epochs[0]["global_step"] if self.epochs else None

    def final(self) -> dict:
        """The run's last numbers: the last epoch's training loss and accuracies (the test metrics of result.json
        when it evaluated the test set once at the end), its epochs, its training seconds in all, and the highest
        CPU pressure at an epoch's end (percent of 10 s in which some task waited for a CPU: other tasks' load)."""
        last = self.epochs[-1] if self.epochs else {}
        values = {key: last[key] for key in FINAL if key in last}
        if self.result is not None:
            values |= {key: value for key, value in self.result.get("test", {}).items() if key in FINAL}
        pressures = [row["cpu_pressure_avg10"] for row in self.epochs if row.get("cpu_pressure_avg10") is not None]
        return (
            values
            | {"epochs": len(self.epochs), "train_seconds": sum(row["train/seconds"] for row in self.epochs)}
            | ({"cpu_pressure": max(pressures)} if pressures else {})  # other tasks' load: suspect seconds
        )

    def state(self) -> str:
        """finished, stopped early (a target or hook ended it sooner) or unfinished, with its epochs."""
        planned = self.config["epochs"]
        if self.result is None:
            return f"unfinished, {len(self.epochs)} of {planned} epochs"
        if self.result.get("stopped_early"):
            return f"stopped early, {len(self.epochs)} of {planned} epochs"
        return "finished"


def read_run(path: Path) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path} is not a folder; compare takes run directories")
    if not (path / rundir.CONFIG).is_file():
        raise RunError(f"{path} is not a run directory (it has no {rundir.CONFIG}); compare takes run directories")
    config = rundir.load_config(path).to_dict()
    result = read_json(path / rundir.RESULT) if rundir.is_finished(path) else None
    return Run(path, path.name, config, read_rows(path / rundir.METRICS), read_rows(path / rundir.STEPS), result)


def read_runs(paths: list[str | Path]) -> list[Run]:
    """The runs in `paths`, in that order, each labelled by a name that tells it apart; at least two."""
    if len(paths) < 2:
        raise ConfigError(f"compare needs at least two run directories, got {len(paths)}")
    seen: dict[Path, str] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise ConfigError(f"{path} is named twice (as {seen[resolved]} before); name each run once")
        seen[resolved] = str(path)
    runs = [read_run(Path(path)) for path in paths]
    for run, label in zip(runs, labels([run.path.resolve() for run in runs])):
        run.label = label
    return runs


def labels(paths: list[Path]) -> list[str]:
    """The shortest trailing parts of each path (the same number for all) that tell the runs apart."""
    for depth in range(1, max(len(p.parts) for p in paths) + 1):
        names = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def differing(runs: list[Run]) -> list[str]:
    """The config fields whose values are not the same in every run, in the config's order."""
    fields = list(dict.fromkeys(name for run in runs for name in run.config))
    return [name for name in fields if name not in UNCOMPARED and len({repr(run.config.get(name)) for run in runs}) > 1]


def curves(run: Run) -> dict:
    """What compare draws for a run, against epochs: step losses at global_step / steps_per_epoch (none before
    its first epoch has finished, when an epoch's length is not yet known), per-epoch rows at their epoch's end."""
    per_epoch = run.steps_per_epoch
    series = {
        "step_epochs": [row["global_step"] / per_epoch for row in run.steps] if per_epoch else [],
        "step_loss": [row["train/loss"] for row in run.steps] if per_epoch else [],
        "steps_per_epoch": per_epoch or 0,
        "epochs": [row["global_step"] / per_epoch for row in run.epochs],  # an epoch a target cut short: a fraction
    }
    for key in ("train/loss", "test/loss", "val/loss", "test/acc", "val/acc"):
        series[key] = [row.get(key) for row in run.epochs]
    return series


def title(runs: list[Run], fields: list[str]) -> str:
    """The comparison's title: how many runs, and the first fields in which they differ."""
    if not fields:
        return f"{len(runs)} runs of the same config"
    named = ", ".join(fields[:4]) + (f" and {len(fields) - 4} more" if len(fields) > 4 else "")
    return f"{len(runs)} runs: {named} {'differs' if len(fields) == 1 else 'differ'}"


def figure_folder(out: str | None) -> Path:
    """The folder compare draws into: `out`, else a new compare-<time> in the current directory; made here."""
    folder = Path(out) if out else Path(f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot write {folder}: {error.strerror or error}; choose a writable --out") from None
    return folder
