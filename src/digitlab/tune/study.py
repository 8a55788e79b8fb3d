"""The study behind `digitlab tune`: an Optuna study whose every trial is an ordinary digitlab run.

This module checks a search and opens its study: the space, the settings every trial starts from, the identity
that a later command on the same study must repeat, the pruner and the sampler. The rest of the search:

  storage.py   the study's database (SQLite in the study folder, or a URL), and re-queuing dead workers' trials
  progress.py  counting a study's trials by state, and the line this worker prints per finished trial
  trials.py    the objective (one trial, one run) and the loop that runs trials until --trials have finished
  retrain.py   the best trial retrained on the whole training set, and its recipe best.toml
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from digitlab.config import SPEED_ONLY, TrainConfig
from digitlab.data.dataset import Dataset, load
from digitlab.errors import ConfigError
from digitlab.store.files import read_json, write_json
from digitlab.training.device import parse_device
from digitlab.tune import STUDY_FILE, space
from digitlab.tune.storage import DATABASE, open_storage, shown, without_password

EVALUATIONS_PER_EPOCH = 4  # validation evaluations per epoch: the pruner's steps, and --trial-seconds' resolution
OBJECTIVE = "validation accuracy of the run's model (val/acc; ema/val/acc with --ema-decay), maximized"
# Settings that describe a machine, not the training: neither part of a study's identity nor of its recipe.
MACHINE = {"data_dir", "run_dir", "progress", "device"} | SPEED_ONLY


@dataclass
class Search:
    """What `digitlab tune` was asked: the model, the budget and where the study lives."""

    model: str
    trials: int = 30
    trial_seconds: float = 0.0  # training seconds per trial (0 = no limit)
    epochs: int = 3
    space_file: str | None = None
    storage: str | None = None  # a database URL; None: SQLite in the study folder (or what study.json recorded)
    study_name: str | None = None  # default: the model's name
    out: str | None = None  # the study folder; default studies/<study name>
    seed: int = 0
    val_size: int = 5000
    data_dir: str | None = None
    threads: int = 0
    device: str = "auto"

    @property
    def name(self) -> str:
        return self.study_name or self.model

    @property
    def folder(self) -> Path:
        return Path(self.out) if self.out else Path("studies") / self.name

    def validate(self) -> None:
        if self.trials < 0:
            raise ConfigError(f"--trials must be 0 or more, got {self.trials}")
        if not self.trial_seconds >= 0:
            raise ConfigError(f"--trial-seconds must be 0 (no limit) or more, got {self.trial_seconds}")
        if self.val_size <= 0:
            raise ConfigError("a search is judged on a validation split: --val-size must be positive, e.g. 5000")


@dataclass
class Opened:
    """A study ready to run: its Optuna objects, its space and the settings every trial starts from."""

    search: Search
    study: optuna.Study
    storage: optuna.storages.RDBStorage
    space: space.Space
    base: TrainConfig  # the fixed settings applied; each trial adds its sampled ones
    url: str  # the storage URL as given (may hold a password: never printed or written; see shown())
    log: Callable[..., None] = print
    ran: list[int] = field(default_factory=list)  # trial numbers this process finished


# --- opening a study ---------------------------------------------------------------------------------------


def base_config(search: Search) -> TrainConfig:
    """The settings every trial starts from, before the space's fixed and sampled values."""
    return TrainConfig(
        model=search.model, epochs=search.epochs, seed=search.seed, val_size=search.val_size,
        data_dir=search.data_dir, threads=search.threads, device=search.device, progress="none",
        test_eval="none", keep_checkpoints=1,
    )  # fmt: skip


def identity(opened_space: space.Space, base: TrainConfig, search: Search) -> dict:
    """What a study's values mean: the objective, the settings its trials start from, the budget, the space.
    A later command on the same study must give the same, or the values would not compare."""
    settings = {k: v for k, v in base.to_dict().items() if k not in MACHINE}
    record = {"objective": OBJECTIVE, "settings": settings, "trial_seconds": search.trial_seconds}
    return json.loads(json.dumps(record | {"space": space.specs(opened_space)}))  # as the storage returns it


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {json.dumps(a)} (now {json.dumps(b)})")
    return out


def open_study(search: Search, command: str, pruner=None, log=print) -> Opened:
    """Check the search, its space and its storage, then create or load the study: nothing is written before
    the space parses and validates and the storage connects. ConfigError (one line) for anything wrong.
    `command`: the command line as it was called (`digitlab tune ...`), which a new study records in study.json;
    given, not read from sys.argv, because cli.main(argv) may be called with other arguments than the process's."""
    search.validate()
    source = search.space_file or f"the {search.model} model's search space"
    if search.space_file is not None and not Path(search.space_file).is_file():
        raise ConfigError(f"--space {search.space_file}: no such file")
    searched = space.of_model(search.model, search.space_file)
    base = space.check(searched, base_config(search), source)
    parse_device(base.device)  # an unusable --device fails now, not in every trial
    folder = search.folder
    recorded = read_json(folder / STUDY_FILE) if (folder / STUDY_FILE).is_file() else None
    if recorded is not None and recorded.get("study_name") != search.name:
        raise ConfigError(
            f"{folder} holds the study {recorded.get('study_name')!r}, not {search.name!r}: give its --study-name, "
            f"or another --out for a new study"
        )
    if recorded is not None and search.storage is not None and without_password(search.storage) != recorded["storage"]:
        where = recorded["storage"] or f"its own {DATABASE}"
        raise ConfigError(
            f"{folder} holds the study {search.name!r} of the storage {where}, not {shown(search.storage)}; "
            f"give that --storage (or none, to use the one recorded), or another --out"
        )
    url = search.storage or (recorded or {}).get("storage")
    if url is None:
        _make_folder(folder)
        url = f"sqlite:///{(folder / DATABASE).resolve()}"
    storage = open_storage(url)
    wanted = identity(searched, base, search)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # digitlab says what happens, one line per trial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=storage, study_name=search.name, direction="maximize", load_if_exists=True,
            sampler=PerTrialSeed(search.seed), pruner=pruner or default_pruner(),
        )  # fmt: skip
    _check_identity(study, wanted, search, url)
    if recorded is None:
        _make_folder(folder)
        write_json(folder / STUDY_FILE, {
            "kind": "digitlab tune study", "study_name": search.name, "model": search.model,
            "storage": None if search.storage is None else without_password(url),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
        })  # fmt: skip
    return Opened(search, study, storage, searched, base, url, log)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot make the study folder {folder}: {error.strerror or error}; give another --out"
        ) from None


def _check_identity(study: optuna.Study, wanted: dict, search: Search, url: str) -> None:
    """A new study takes `wanted` as its identity; an existing one must have the same (else one line, and the
    study is left as it was)."""
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(
            f"the study {search.name!r} in {shown(url)} exists with another objective "
            f"({', '.join(d.name.lower() for d in study.directions)} of something else than validation accuracy); "
            f"give another --study-name"
        )
    recorded = study.user_attrs.get("digitlab")
    if recorded is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(
                f"the study {search.name!r} in {shown(url)} exists with another objective (it was not made by "
                f"digitlab tune); give another --study-name"
            )
        study.set_user_attr("digitlab", wanted)  # two workers starting at once both write the same
        recorded = study.user_attrs["digitlab"]
    if recorded.get("objective") != wanted["objective"]:
        raise ConfigError(
            f"the study {search.name!r} in {shown(url)} exists with another objective ({recorded.get('objective')}); "
            f"give another --study-name"
        )
    changed = differences(recorded, wanted)
    if changed:
        raise ConfigError(
            f"the study {search.name!r} in {shown(url)} was started with other settings: {'; '.join(changed[:4])}"
            f"{'; ...' if len(changed) > 4 else ''}. Repeat them to continue it, or give another --study-name"
        )


def default_pruner():
    """The median rule: stop a trial whose validation accuracy is below the median of the finished trials' at the
    same point (a quarter epoch apart). Chosen over Hyperband because a study here has tens of trials of a few
    epochs each: Hyperband's brackets would split those few trials into smaller groups and stop them by a fixed
    plan, where the median compares each trial with all the finished ones. Its warm-up spares a trial's first
    epoch (one-cycle and cosine schedules start slow by design) and its first 5 trials (no median to speak of)."""
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=EVALUATIONS_PER_EPOCH)


class PerTrialSeed(optuna.samplers.BaseSampler):
    """TPE, seeded anew for each trial from (study seed, trial number).

    One sampler seeded once would draw the same random start-up points again in a restarted process, and in every
    worker of a shared study; trial numbers are unique in a study, so seeding by them gives every trial its own
    draws, and one uninterrupted worker the same study from the same --seed. Multivariate TPE with groups models
    the parameters together and handles the conditional ones (warmup only with a schedule); its constant liar
    keeps parallel workers from sampling next to each other's running trials."""

    def __init__(self, seed: int):
        self.seed = seed
        self.sampler = self._tpe(seed)

    @staticmethod
    def _tpe(seed: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)

    def before_trial(self, study, trial: FrozenTrial) -> None:
        self.sampler = self._tpe((self.seed * 1_000_003 + trial.number) % 2**32)
        self.sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


def load_data(opened: Opened) -> Dataset:
    """The dataset, loaded once for every trial of this process."""
    return load(opened.base.data_dir, log=opened.log, expect=opened.base.dataset)
