"""The run directory: config.json, env.json, metrics.jsonl (per epoch), steps.jsonl (per step),
evaluations.jsonl (every validation evaluation), checkpoints/ and checkpoints.jsonl, tensorboard/ (the same
rows as TensorBoard event files, where the tensorboard package is installed: store.events), and once the run
has finished, model.safetensors (with --ema-decay also model-ema.safetensors) and result.json (written last).

A directory without result.json is an unfinished run: commands that need a finished one refuse it,
and `train --resume` continues it. While a process trains in it, that process holds the folder's lock
(`.lock`, see store.lock): a second `train` into it, or `--resume` of it, is refused with the holder's pid.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError, RunError
from digitlab.store.checkpoint import load_tensors, save_tensors
from digitlab.store.files import read_json, write_json

CONFIG = "config.json"  # the resolved TrainConfig; its presence marks a folder as a run
ENV = "env.json"  # versions and hardware (perf.machine.environment)
METRICS = "metrics.jsonl"  # one row per epoch
STEPS = "steps.jsonl"  # one row per optimizer step
EVALUATIONS = "evaluations.jsonl"  # one row per validation evaluation, with the training seconds so far
CHECKPOINT_LOG = "checkpoints.jsonl"  # one row per checkpoint written: its global step and seconds
CHECKPOINTS = "checkpoints"  # folder of step-*.safetensors (store.checkpoint)
WEIGHTS = "model.safetensors"  # the finished model, with its image shape and classes as metadata
AVERAGE_WEIGHTS = "model-ema.safetensors"  # its weights' moving average (--ema-decay), the same metadata
RESULT = "result.json"  # written last: its presence marks the run finished
TENSORBOARD = "tensorboard"  # TensorBoard event files of the rows above (store.events), when the package is installed


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{config.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / RESULT).is_file()


def create(run_dir: Path, config: TrainConfig, environment: dict) -> None:
    """Make a new run directory; refuse one that already holds a run."""
    run_dir = Path(run_dir)
    if (run_dir / CONFIG).exists():
        state = "a finished run" if is_finished(run_dir) else "an unfinished run (continue it with --resume)"
        raise RunError(f"{run_dir} already holds {state}; choose another --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / ENV, environment)
        # config.json last: its presence is what marks the folder as a run.
        write_json(run_dir / CONFIG, config.to_dict())
    except OSError as error:
        raise RunError(
            f"cannot write the run directory {run_dir}: {error.strerror or error}; choose a writable --run-dir"
        ) from None


def load_config(run_dir: Path) -> TrainConfig:
    try:
        return TrainConfig.from_dict(read_json(Path(run_dir) / CONFIG))
    except (ConfigError, TypeError) as error:
        raise RunError(f"{run_dir}/{CONFIG} is not a digitlab config: {error}") from None


def save_weights(run_dir: Path, model: torch.nn.Module, info: dict, name: str = WEIGHTS) -> None:
    save_tensors(Path(run_dir) / name, model.state_dict(), info)


def read_weights(run_dir: Path, name: str = WEIGHTS) -> tuple[dict[str, torch.Tensor], dict]:
    """A finished run's weights and their metadata (model, image shape, classes)."""
    try:
        return load_tensors(Path(run_dir) / name)
    except ValueError as error:
        raise RunError(str(error)) from None


def apply_weights(run_dir: Path, model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load read_weights()'s tensors into `model`; RunError if they belong to another model."""
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise RunError(f"{run_dir}/{WEIGHTS} does not fit the model its config describes ({detail})") from None
