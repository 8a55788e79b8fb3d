"""TrainConfig: every knob of a training run, with its default, unit and help.

The CLI builds `digitlab train`'s flags from these fields (group and help from each field's metadata),
`fit()` reads nothing else, and the resolved config is saved as `config.json` in every run directory.
Each field says whether a resumed run may change it (`resumable`: what is computed stays the same)
and whether it changes only the speed of a run, not its result (`speed_only`).

Also here: RESUMABLE_CHANGES and SPEED_ONLY (those fields' names), resumed_config (what `train --resume` goes
on with), field_types (each field's type) and flag (a field's command-line flag).
"""

from __future__ import annotations

import dataclasses
import json
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from digitlab.errors import ConfigError
from digitlab.optim import OPTIMIZERS

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
TEST_EVALUATIONS = ("every-epoch", "final", "none")


def _either(names) -> str:
    """'a, b or c': a registry's names, for a help text."""
    *first, last = names
    return f"{', '.join(first)} or {last}" if first else last


def setting(default, group: str, help: str, resumable: bool = False, speed_only: bool = False):  # noqa: A002
    """A TrainConfig field: its default, its flag group and help text, and what a resumed run may change."""
    return field(
        default=default, metadata={"group": group, "help": help, "resumable": resumable, "speed_only": speed_only}
    )


@dataclass
class TrainConfig:
    # --- model ---
    model: str = setting("lstm", "model", "model name, a key of MODELS (see 'digitlab models')")
    hidden_size: int | None = setting(
        None, "model", "units per recurrent layer or hidden FC width (default: the model's)"
    )
    num_layers: int | None = setting(None, "model", "recurrent or hidden layers (default: the model's)")
    channels: int | None = setting(
        None, "model", "channels of a CNN's first block, doubled in each next (vgg only; default: the model's)"
    )
    dropout: float = setting(0.0, "model", "dropout probability between layers (0 = off, the paper's setting)")
    blstm_head: str = setting(
        "paper", "model", "BLSTM head: 'paper' (out[:, -1, :], as Su 2018) or 'final' (both directions' final states)"
    )
    init: str | None = setting(
        None, "optimisation", "fine-tune: start from the weights of this finished run (the same model settings)"
    )
    # --- optimisation ---
    optimizer: str = setting("adam", "optimisation", f"{_either(OPTIMIZERS)} (digitlab.optim)")
    lr: float = setting(0.001, "optimisation", "learning rate (the paper's 0.001 for every optimizer)")
    batch_size: int = setting(100, "optimisation", "examples per optimizer step (global, across all processes)")
    epochs: int = setting(1, "optimisation", "passes over the training set", resumable=True)
    seed: int = setting(0, "optimisation", "seeds weight init, batch order and dropout")
    divergence_factor: float = setting(
        1000.0,
        "optimisation",
        "stop the run as diverged when a step's loss exceeds this many times the chance-level loss ln(classes) "
        "(0 = stop only on a non-finite loss or gradient)",
        resumable=True,
    )
    schedule: str = setting(
        "constant",
        "optimisation",
        "learning-rate schedule over the run's steps: constant, onecycle (torch's OneCycleLR shape, peak --lr) "
        "or cosine (linear warm-up, then cosine decay to 0); see digitlab.schedules",
    )
    warmup: float = setting(
        0.0, "optimisation", "fraction of the run's steps spent warming up (onecycle: 0 means its default 0.25)"
    )
    weight_decay: float | None = setting(
        None, "optimisation", "weight decay given to the optimizer (default: the optimizer's own: 0; adamw 0.01)"
    )
    label_smoothing: float = setting(0.0, "optimisation", "label smoothing of the cross-entropy loss (0 = off)")
    grad_clip: float = setting(0.0, "optimisation", "clip the global gradient norm to this (0 = off)")
    ema_decay: float = setting(
        0.0,
        "optimisation",
        "keep an exponential moving average of the weights with this decay per step, e.g. 0.999 (0 = off); "
        "it is evaluated and saved beside the raw weights",
    )
    # --- augmentation ---
    rotate: float = setting(0.0, "augmentation", "rotate training images by up to this many degrees (0 = off)")
    scale: float = setting(0.0, "augmentation", "scale training images by up to this fraction, e.g. 0.1 (0 = off)")
    shift: float = setting(0.0, "augmentation", "shift training images by up to this many pixels (0 = off)")
    elastic: float = setting(
        0.0, "augmentation", "elastic distortion of training images, displacement in pixels, e.g. 2 (0 = off)"
    )
    # --- evaluation ---
    eval_every: int = setting(
        0,
        "evaluation",
        "also evaluate on the validation split every N optimizer steps (0 = at epoch ends only; with "
        "--target-acc, a quarter epoch)",
        resumable=True,
    )
    target_acc: float = setting(
        0.0,
        "evaluation",
        "stop at the first validation evaluation whose accuracy reaches this, e.g. 0.99, and record the training "
        "seconds it took (needs --val-size; 0 = off)",
        resumable=True,
    )
    test_eval: str = setting(
        "every-epoch",
        "evaluation",
        "when the test set is evaluated: every-epoch (the paper's curves), final (once, when the run ends) or none "
        "(never: a search's trials, chosen on the validation split)",
        resumable=True,
    )
    # --- data ---
    data_dir: str | None = setting(
        None,
        "data",
        "folder with the four IDX files (default: $DIGITLAB_DATA_DIR, cache, mirrors, npm)",
        resumable=True,
    )
    dataset: str = setting(
        "auto",
        "data",
        "auto (MNIST, Fashion-MNIST or KMNIST recognised by checksum; other MNIST-shaped files in --data-dir "
        "train as custom data), mnist, fashion-mnist or kmnist (the files must be that dataset), or custom",
        resumable=True,
    )
    val_size: int = setting(0, "data", "training examples held out for validation (0 = none)")
    train_limit: int = setting(0, "data", "use only the first N training examples (0 = all); for quick runs")
    test_limit: int = setting(0, "data", "use only the first N test examples (0 = all); for quick runs")
    negatives: int = setting(0, "data", "add N generated non-digits to the training split, taught 'not a digit'")
    # --- hardware ---
    device: str = setting("auto", "hardware", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N", resumable=True)
    threads: int = setting(0, "hardware", "CPU threads for torch (0 = physical cores)", speed_only=True)
    precision: str = setting(
        "fp32",
        "hardware",
        "fp32, bf16 (autocast), fp16 (autocast + grad scaler, CUDA only), or auto: bf16 where the device runs it "
        "natively (CUDA with bf16, CPUs with AVX512_BF16 or AMX), else fp32",
    )
    deterministic: bool = setting(False, "hardware", "use PyTorch's deterministic algorithms (recorded in the run)")
    micro_batch: int = setting(
        0,
        "hardware",
        "examples per forward/backward pass; the step's gradient is unchanged, except under batch norm, which "
        "normalises over each pass (0 = 100 on CPU, the batch on GPU and for batch-norm models)",
        speed_only=True,  # true without batch norm; a batch-norm model's default pass is its whole batch
    )
    eval_batch_size: int = setting(2000, "hardware", "examples per evaluation forward pass", resumable=True)
    check_every: int = setting(
        1,
        "hardware",
        "optimizer steps between reads of the divergence check (1 = every step, before the update; more keeps the "
        "states the unread steps started from on the device and undoes a bad step found late, sparing a GPU "
        "synchronisation per step)",
        resumable=True,
        speed_only=True,
    )
    # --- run records ---
    run_dir: str | None = setting(
        None, "run records", "where to write the run (default: runs/<model>-<optimizer>-<time>)", resumable=True
    )
    checkpoint_every: int = setting(
        0, "run records", "also checkpoint every N optimizer steps (0 = epoch ends only)", resumable=True
    )
    keep_checkpoints: int = setting(2, "run records", "newest checkpoints kept on disk", resumable=True)
    progress: str = setting("auto", "run records", "auto (bar on a terminal), bar, lines or none", resumable=True)

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first bad setting; return self when all are sound."""
        import torch

        from digitlab.console import PROGRESS_MODES
        from digitlab.data.known import DATASET_CHOICES
        from digitlab.models import BLSTM_HEADS, MODELS, build_from_config
        from digitlab.schedules import SCHEDULES

        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        positive = ["batch_size", "epochs", "eval_batch_size", "keep_checkpoints"]
        positive += [name for name in ("hidden_size", "num_layers", "channels") if getattr(self, name) is not None]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{flag(name)} must be positive, got {getattr(self, name)}")
        if self.check_every < 1:
            raise ConfigError(f"--check-every must be 1 or more, got {self.check_every}")
        counts = ("micro_batch", "val_size", "train_limit", "test_limit", "threads", "checkpoint_every", "negatives")
        for name in counts:
            if getattr(self, name) < 0:
                raise ConfigError(f"{flag(name)} must be 0 or more, got {getattr(self, name)}")
        for name in ("label_smoothing", "ema_decay", "warmup", "scale"):
            if not (0.0 <= getattr(self, name) < 1.0):
                raise ConfigError(f"{flag(name)} must be in [0, 1), got {getattr(self, name)}")
        for name in ("grad_clip", "rotate", "shift", "elastic", "eval_every"):
            if not (getattr(self, name) >= 0):  # also refuses nan
                raise ConfigError(f"{flag(name)} must be 0 or more, got {getattr(self, name)}")
        if self.weight_decay is not None and not (self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be 0 or more, got {self.weight_decay}")
        if not (0.0 <= self.target_acc <= 1.0):
            raise ConfigError(f"--target-acc is a fraction in [0, 1], e.g. 0.99; got {self.target_acc}")
        if self.target_acc and not self.val_size:
            raise ConfigError("--target-acc evaluates on the validation split: give --val-size too, e.g. 5000")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if self.test_eval not in TEST_EVALUATIONS:
            raise ConfigError(f"unknown --test-eval {self.test_eval!r}; choose one of: {', '.join(TEST_EVALUATIONS)}")
        if not (self.divergence_factor >= 0):  # also refuses nan
            raise ConfigError(f"--divergence-factor must be 0 or more, got {self.divergence_factor}")
        if self.init is not None and not (Path(self.init) / "result.json").is_file():  # store.rundir.RESULT
            raise ConfigError(f"--init {self.init} is not a finished run; pass a run directory 'digitlab train' made")
        if not (self.lr > 0):
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if not (0.0 <= self.dropout < 1.0):
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.dataset not in DATASET_CHOICES:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose one of: {', '.join(DATASET_CHOICES)}")
        if self.progress not in PROGRESS_MODES:
            raise ConfigError(f"unknown progress mode {self.progress!r}; choose one of: {', '.join(PROGRESS_MODES)}")
        if self.blstm_head not in BLSTM_HEADS:  # checked for every model: config.json records it for all
            raise ConfigError(f"unknown BLSTM head {self.blstm_head!r}; choose one of: {', '.join(BLSTM_HEADS)}")
        try:  # the models check their own settings; on the meta device building one allocates nothing
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. nn.LSTM's dropout note: it is given again when the run builds
                build_from_config(self, (28, 28), 10)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"config has unknown settings {unknown}; was it written by a newer digitlab?")
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as error:
            raise ConfigError(f"cannot read run config {path}: {error}") from None

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def resumed_config(saved: TrainConfig, given: dict, run_dir: str) -> TrainConfig:
    """The config a resumed run goes on with: its saved one, with the given settings that may change
    (RESUMABLE_CHANGES); ConfigError naming the flags that may not, or --epochs under a schedule."""
    changed = {name for name, value in given.items() if getattr(saved, name) != value} - {"run_dir"}
    if changed - RESUMABLE_CHANGES:
        refused = ", ".join(flag(name) for name in sorted(changed - RESUMABLE_CHANGES))
        allowed = ", ".join(flag(name) for name in sorted(RESUMABLE_CHANGES - {"run_dir"}))
        raise ConfigError(f"--resume keeps the run's own settings; drop {refused} (only {allowed} may change)")
    if "epochs" in changed and saved.schedule != "constant":
        raise ConfigError(
            f"the run's {saved.schedule} schedule is laid over its {saved.epochs} epochs, so --resume cannot "
            f"change --epochs; drop --epochs, or start a new run"
        )
    return saved.replace(**(given | {"run_dir": run_dir}))


def field_types() -> dict[str, type]:
    """TrainConfig field -> its type, None stripped (hidden_size: int | None -> int): None is a setting's absence."""
    hints = typing.get_type_hints(TrainConfig)
    return {
        f.name: next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        for f in dataclasses.fields(TrainConfig)
    }


def flag(name: str) -> str:
    """The command-line flag of a TrainConfig field."""
    return "--" + name.replace("_", "-")


# Fields that may differ between a run and its resumption without changing what is computed.
RESUMABLE_CHANGES = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resumable"])
# Fields that change how fast a run goes, not what it computes (up to rounding order).
SPEED_ONLY = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["speed_only"])
