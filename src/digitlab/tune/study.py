"""The study behind `digitlab tune`: an Optuna study whose every trial is an ordinary digitlab run.

A trial samples its settings from the search space (tune.space), trains with fit() into STUDY_DIR/trials/<number>/
on the training set less --val-size held-out images, and reports each validation evaluation (a quarter epoch
apart) to the pruner; the test set is never evaluated (test_eval "none"). Its value is the last validation
accuracy of the run's model. A run that diverges is pruned, not a crash of the study; --trial-seconds stops a run
at the first evaluation past that much training time, and that evaluation is its value.

Storage is SQLite in the study folder by default, or any database URL (PostgreSQL for workers on several
machines). Resuming is the storage's: finished trials stay finished. A trial whose process died is failed and
re-queued with the same parameters (Optuna's RetryHeartbeatStaleTrialCallback): at once when that process ran on
this machine and is gone, else when its heartbeat has been silent for the grace period. `--trials N` counts
finished (complete or pruned) trials over all workers: a worker takes a trial only while fewer than N are
finished, running or queued, and a trial that loses that race to another worker is dropped before it trains.

The best trial is then retrained on the whole training set with the test set evaluated once, into STUDY_DIR/best/,
and written as STUDY_DIR/best.toml, a recipe that `digitlab train --config` runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from digitlab.config import SPEED_ONLY, TrainConfig
from digitlab.data.batching import num_batches
from digitlab.data.dataset import Dataset, load
from digitlab.errors import ConfigError, Interrupted, TrainingError
from digitlab.store import rundir
from digitlab.store.files import read_json, write_json
from digitlab.training.device import parse_device
from digitlab.training.fit import fit
from digitlab.training.metrics import model_accuracy
from digitlab.tune import STUDY_FILE, space

DATABASE = "study.db"  # the default storage, in the study folder
TRIALS, BEST, RECIPE = "trials", "best", "best.toml"
RETRAINED = "trial.json"  # in a retraining's run directory: the study, trial and seed it retrains
EVALUATIONS_PER_EPOCH = 4  # validation evaluations per epoch: the pruner's steps, and --trial-seconds' resolution
OBJECTIVE = "validation accuracy of the run's model (val/acc; ema/val/acc with --ema-decay), maximized"
# A worker records a heartbeat every HEARTBEAT_SECONDS; a running trial silent for GRACE_SECONDS is failed and
# re-queued by whichever worker looks next. The grace spans several beats, so a busy machine is not taken for dead.
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 60
MAX_RETRIES = 2  # a trial whose process keeps dying (out of memory, say) is given up after this many re-runs
POLL_SECONDS = 1.0  # while the remaining trials run on other workers
# Settings that describe a machine, not the training: neither part of a study's identity nor of its recipe.
MACHINE = {"data_dir", "run_dir", "progress", "device"} | SPEED_ONLY
ALWAYS = {"model", "optimizer", "lr", "batch_size", "epochs"}  # in a recipe even where they are TrainConfig's defaults
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


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


# --- storage -----------------------------------------------------------------------------------------------


def shown(url: str) -> str:
    """The URL with its password masked, for messages and files."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: mask anything between '://user:' and '@'
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def without_password(url: str) -> str:
    """The URL to record in study.json: no password (PostgreSQL then reads PGPASSWORD or ~/.pgpass)."""
    try:
        from sqlalchemy.engine import URL, make_url

        parts = make_url(url)
        return URL.create(
            parts.drivername, parts.username, None, parts.host, parts.port, parts.database, parts.query
        ).render_as_string(hide_password=False)
    except Exception:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", url)


def retry_callback():
    """Optuna's callback that re-queues a failed trial with its parameters (renamed in Optuna 4.9)."""
    storages = optuna.storages
    retry = getattr(storages, "RetryHeartbeatStaleTrialCallback", None) or storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return retry(max_retry=MAX_RETRIES)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Connect to the study's database (made on first use); one ConfigError line, password masked, if it fails."""
    import sqlalchemy.exc

    driver_url, engine = url, {}
    if url.startswith(("postgresql://", "postgres://")):  # psycopg 3, the driver the tune extra installs
        driver_url = "postgresql+psycopg://" + url.split("://", 1)[1]
        engine = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    renamed = hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")  # Optuna 4.9 renamed the option
    options = {"heartbeat_stale_trial_callback" if renamed else "failed_trial_callback": retry_callback()}
    options |= {"engine_kwargs": engine, "heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS}
    try:
        for attempt in range(5):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(driver_url, **options)
            except sqlalchemy.exc.IntegrityError:  # workers starting at once on a new database: one made the
                if attempt == 4:  # tables the other was making too, and the other's next try finds them
                    raise
                time.sleep(0.2 * (attempt + 1))
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConfigError(f"--storage {shown(url)}: unknown kind of database; give e.g. sqlite:///FILE or "
                          f"postgresql://USER@HOST:PORT/DATABASE") from None  # fmt: skip
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(f"--storage {shown(url)} is not a database URL; give e.g. sqlite:///FILE or "
                          f"postgresql://USER@HOST:PORT/DATABASE") from None  # fmt: skip
    except ImportError:
        raise ConfigError(
            f"--storage {shown(url)}: the database's Python driver is not installed (PostgreSQL: pip install "
            f"'digitlab[tune]', which brings psycopg)"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        password = _password(url)
        if password:
            reason = reason.replace(password, "***")
        raise ConfigError(f"cannot connect to the study storage {shown(url)}: {reason}") from None
    except RuntimeError as error:  # e.g. a schema written by a newer Optuna
        raise ConfigError(f"cannot use the study storage {shown(url)}: {str(error).splitlines()[0]}") from None


def _password(url: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).password
    except Exception:
        return None


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


def open_study(search: Search, pruner=None, log=print) -> Opened:
    """Check the search, its space and its storage, then create or load the study: nothing is written before
    the space parses and validates and the storage connects. ConfigError (one line) for anything wrong."""
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
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(["digitlab"] + sys.argv[1:]),
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


# --- the trials --------------------------------------------------------------------------------------------


def trial_config(opened: Opened, params: dict, run_dir: Path, train_examples: int) -> TrainConfig:
    """A trial's config: the base, its sampled settings, evaluations a quarter epoch apart, its run directory."""
    config = opened.base.replace(**params, run_dir=str(run_dir))
    steps = num_batches(train_examples, config.batch_size)
    return config.replace(eval_every=max(1, steps // EVALUATIONS_PER_EPOCH))


def train_examples(dataset: Dataset, config: TrainConfig) -> int:
    """How many training examples a run of `config` steps through (after --train-limit and --val-size)."""
    available = len(dataset.train_labels)
    return (min(config.train_limit, available) if config.train_limit else available) - config.val_size


class Watch:
    """The trial's evaluation hook: reports each validation accuracy to the pruner, and asks the run to stop when
    the pruner says so or when its training seconds pass the budget."""

    def __init__(self, trial: optuna.Trial, config: TrainConfig, budget: float):
        self.trial, self.budget, self.averaged = trial, budget, config.ema_decay > 0
        self.value: float | None = None
        self.epoch, self.seconds, self.last_step = 0.0, 0.0, 0
        self.pruned, self.out_of_time = False, False

    def __call__(self, evaluation: dict) -> bool:
        self.value = model_accuracy(evaluation, "val", self.averaged)
        self.epoch, self.seconds = float(evaluation["epoch"]), float(evaluation["train_seconds"])
        step = round(self.epoch * EVALUATIONS_PER_EPOCH)  # the same point of training in every trial
        if step > self.last_step:  # an epoch's end can fall on the step of the evaluation just before it
            self.last_step = step
            self.trial.report(self.value, step)
            if self.trial.should_prune():
                self.pruned = True
                return True
        self.out_of_time = bool(self.budget) and self.seconds >= self.budget
        return self.out_of_time


class Surplus(Exception):
    """This trial would exceed --trials: another worker took the last one at the same moment."""


class Objective:
    def __init__(self, opened: Opened, dataset: Dataset):
        self.opened, self.dataset = opened, dataset
        self.current: int | None = None  # the trial this process is running

    def __call__(self, trial: optuna.Trial) -> float:
        opened = self.opened
        ahead = [t for t in trial.study.get_trials(deepcopy=False, states=TAKEN) if t.number < trial.number]
        if len(ahead) >= opened.search.trials:  # lost the race for the last trial: dropped before it trains
            trial.set_user_attr("failure", f"surplus: {opened.search.trials} trials were taken by other workers")
            trial.study.stop()
            raise Surplus(f"trial {trial.number} is beyond --trials {opened.search.trials}")
        self.current = trial.number
        trial.set_user_attr("worker", worker(trial.number))
        params = space.sample(opened.space, trial)
        run_dir = opened.search.folder / TRIALS / str(trial.number)
        config = trial_config(opened, params, run_dir, train_examples(self.dataset, opened.base))
        watch = Watch(trial, config, opened.search.trial_seconds)
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "train.log", "a") as out:

            def log(*args, **kwargs):
                print(*args, file=out, flush=True)

            try:
                fit(config, dataset=self.dataset, log=log, on_evaluation=watch)
            except ConfigError as error:  # settings that cannot train together (a batch above the data, say),
                trial.set_user_attr("invalid", str(error))  # which the bounds alone did not show: pruned
                raise optuna.TrialPruned(f"invalid settings: {error}") from None
            except Interrupted:
                raise
            except TrainingError as error:  # diverged: a result about these settings, not a crash of the study
                where = re.search(r"diverged at epoch \d+, step \d+", str(error))
                trial.set_user_attr("diverged", where[0] if where else str(error)[:120])
                trial.set_user_attr("divergence", str(error))
                raise optuna.TrialPruned(str(error)) from None
        trial.set_user_attr("epochs", round(watch.epoch, 3))
        trial.set_user_attr("train_seconds", round(watch.seconds, 2))
        if watch.out_of_time:
            trial.set_user_attr("stopped", f"--trial-seconds {opened.search.trial_seconds:g}")
        if watch.pruned:
            raise optuna.TrialPruned(f"pruned at epoch {watch.epoch:.2f}")
        if watch.value is None:  # cannot happen with a validation split; said plainly if it does
            raise TrainingError(f"trial {trial.number} made no validation evaluation")
        return watch.value


# --- workers: who runs which trial -------------------------------------------------------------------------


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """When the process started (clock ticks since boot), or None when it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return None if fields[0] in ("Z", "X") else int(fields[19])


def worker(trial_number: int) -> dict:
    """Who runs a trial: enough to tell, on the same machine, that its process has ended."""
    pid = os.getpid()
    return {
        "host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "started": _process_start(pid),
        "trial": trial_number,
    }  # fmt: skip


def gone(trial: FrozenTrial) -> bool:
    """Whether the process running this trial has ended: known only on its own machine (same host name and boot)
    from /proc; elsewhere, the storage's heartbeat finds it after its grace period."""
    record = trial.user_attrs.get("worker") or {}
    if record.get("trial") != trial.number:  # a re-queued trial carries its predecessor's record until it starts
        return False
    if record.get("host") != socket.gethostname() or record.get("boot") is None or record["boot"] != _boot_id():
        return False
    return _process_start(record["pid"]) != record.get("started")


def release_dead(opened: Opened) -> None:
    """Fail and re-queue (same parameters) the running trials whose process has ended: on this machine at once,
    elsewhere through the heartbeat."""
    study, storage = opened.study, opened.storage
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not gone(trial):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        pid = trial.user_attrs["worker"]["pid"]
        try:
            storage.set_trial_user_attr(trial_id, "failure", f"its process (pid {pid}) ended before the trial did")
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:  # another worker got there first
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # its retried_trial_number
            retry_callback()(study, storage.get_trial(trial_id))
        opened.log(f"trial {trial.number} was left running by a process that has ended (pid {pid}): re-queued")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # the heartbeat: trials of workers silent for the grace period


@dataclass
class Tally:
    trials: list[FrozenTrial]

    def count(self, *states: TrialState) -> int:
        return sum(t.state in states for t in self.trials)

    @property
    def finished(self) -> int:
        return self.count(*FINISHED)

    @property
    def best(self) -> FrozenTrial | None:
        complete = [t for t in self.trials if t.state == TrialState.COMPLETE and t.value is not None]
        return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def tally(study: optuna.Study) -> Tally:
    return Tally(study.get_trials(deepcopy=False))


# --- the search --------------------------------------------------------------------------------------------


def load_data(opened: Opened) -> Dataset:
    """The dataset, loaded once for every trial of this process."""
    return load(opened.base.data_dir, log=opened.log, expect=opened.base.dataset)


def run(opened: Opened, dataset: Dataset | None = None) -> Tally:
    """Run trials until the study has --trials finished ones (counting every worker's); return the tally."""
    search, study, log = opened.search, opened.study, opened.log
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # Progress says how each trial ended, failures included
    release_dead(opened)
    now = tally(study)
    log(
        f"study {search.name!r} ({shown(opened.url)}): {search.trials} trials of {search.model}, "
        f"{opened.base.epochs} epochs each"
        + (f" (stopped at {search.trial_seconds:g} s of training)" if search.trial_seconds else "")
        + f", judged on {search.val_size} held-out training images; {now.finished} finished so far; "
        f"each trial's log: {search.folder / TRIALS}/<number>/train.log"
    )
    if now.finished >= search.trials:
        return now
    dataset = dataset if dataset is not None else load_data(opened)
    objective, progress = Objective(opened, dataset), Progress(opened)
    waiting_said = False
    while True:
        release_dead(opened)
        now = tally(study)
        if now.finished >= search.trials:
            break
        if now.count(*TAKEN) >= search.trials and not now.count(TrialState.WAITING):
            if not waiting_said:  # the rest are running on other workers: one that dies is re-queued here
                running = now.count(TrialState.RUNNING)
                log(f"waiting for {running} trial{'s' * (running != 1)} running on other workers")
                waiting_said = True
            time.sleep(POLL_SECONDS)
            continue
        try:
            study.optimize(objective, callbacks=[progress, full(search.trials)], catch=(Surplus,), gc_after_trial=True)
        except (Interrupted, KeyboardInterrupt) as error:
            if objective.current is not None:  # optuna failed it: queue it again for the next run
                trial = next(t for t in study.get_trials(deepcopy=False) if t.number == objective.current)
                if trial.state == TrialState.FAIL:
                    retry_callback()(study, trial)
            if not isinstance(error, Interrupted):
                raise
            # fit's message would say `digitlab train --resume TRIAL`; the study goes on by its own command
            stopped = Interrupted(
                f"{str(error).split(' at epoch')[0].split(' after epoch')[0]} during trial {objective.current}, which "
                f"runs again, with its parameters, when the same command continues the study",
                None,
            )
            stopped.exit_code = error.exit_code
            raise stopped from None
        objective.current = None
    progress.summary(now)
    return now


def full(budget: int):
    """An optuna callback: stop this worker once the finished, running and queued trials reach the budget."""

    def stop_when_full(study: optuna.Study, trial: FrozenTrial) -> None:
        now = tally(study)
        if now.count(*TAKEN) >= budget and not now.count(TrialState.WAITING):
            study.stop()

    return stop_when_full


class Progress:
    """One line per trial this worker finishes: the count, its outcome, the best so far, the pruned, the time."""

    def __init__(self, opened: Opened):
        self.opened, self.seconds = opened, []

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get("failure", "").startswith("surplus"):
            return
        now = tally(study)
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        self.seconds.append(seconds)
        self.opened.ran.append(trial.number)
        best = now.best
        self.opened.log(
            f"[{now.finished}/{self.opened.search.trials}] trial {trial.number} {outcome(trial)} | best "
            + (f"{best.value:.2%} (trial {best.number})" if best else "none yet")
            + f" | {now.count(TrialState.PRUNED)} pruned | {seconds:.1f} s"
            + (f" ({sum(self.seconds) / len(self.seconds):.1f} s per trial here)" if len(self.seconds) > 1 else "")
        )

    def summary(self, now: Tally) -> None:
        best, log = now.best, self.opened.log
        words = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed (killed "
                 "and re-run, or surplus)", TrialState.RUNNING: "running elsewhere"}  # fmt: skip
        counts = ", ".join(f"{now.count(s)} {word}" for s, word in words.items() if now.count(s) or s in FINISHED)
        spent = sum(self.seconds)
        took = f"{spent:.0f} s" if spent < 120 else f"{spent / 60:.1f} min"
        here = f"; this process ran {len(self.seconds)} of them in {took}" if self.seconds else ""
        log(f"study {self.opened.search.name!r}: {now.finished} finished trials ({counts}){here}")
        if best is not None:
            log(f"best: trial {best.number}, validation accuracy {best.value:.2%}, {describe(best.params)}")


def outcome(trial: FrozenTrial) -> str:
    """What became of a trial, in a few words."""
    attrs = trial.user_attrs
    if trial.state == TrialState.COMPLETE:
        stopped = f", stopped by {attrs['stopped']}" if "stopped" in attrs else ""
        return f"complete: {trial.value:.2%} at epoch {attrs.get('epochs', 0):g}{stopped}"
    if trial.state == TrialState.PRUNED:
        if "diverged" in attrs:
            return f"pruned: {attrs['diverged']}"
        if "invalid" in attrs:
            return f"pruned: invalid settings ({attrs['invalid']})"
        last = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
        return f"pruned at epoch {attrs.get('epochs', 0):g}" + (f" ({last:.2%})" if last is not None else "")
    return f"{trial.state.name.lower()}" + (f": {attrs['failure']}" if "failure" in attrs else "")


def describe(params: dict) -> str:
    return ", ".join(
        f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}" for name, value in params.items()
    )


# --- retraining the best -----------------------------------------------------------------------------------


def best_config(opened: Opened) -> tuple[FrozenTrial, TrainConfig]:
    now = tally(opened.study)
    if now.best is None:
        raise ConfigError(
            f"the study {opened.search.name!r} has no complete trial to retrain ({now.finished} finished, "
            f"{now.count(TrialState.PRUNED)} of them pruned): run (more) trials, or widen the search space"
        )
    best = now.best
    return best, opened.base.replace(**best.params)


def retrain_dir(folder: Path, seed: int, first: bool) -> Path:
    return folder / (BEST if first else f"{BEST}-seed-{seed}")


def retrain(opened: Opened, seeds: list[int], shard=None, dataset: Dataset | None = None) -> list[Path]:
    """Train the best trial's settings on the whole training set (no validation split), the test set evaluated
    once, for each seed of this shard: STUDY_DIR/best/ (the first seed) and best-seed-<s>/; write best.toml."""
    best, config = best_config(opened)
    log, folder = opened.log, opened.search.folder
    mine = shard.take(seeds) if shard is not None else seeds
    log(
        f"retraining trial {best.number} (validation accuracy {best.value:.2%}) on the whole training set, "
        f"seeds {', '.join(map(str, mine)) or 'none'}"
        + (f" (shard {shard} of seeds {seeds})" if shard and not shard.whole else "")
    )
    final = config.replace(val_size=0, test_eval="final", eval_every=0, keep_checkpoints=2, progress="auto")
    write_recipe(opened, best, final.replace(seed=seeds[0]), [])
    dataset = dataset if dataset is not None else load_data(opened)
    runs = []
    for seed in mine:
        run_dir = retrain_dir(folder, seed, seed == seeds[0])
        marker = {"study": opened.search.name, "trial": best.number, "value": best.value, "seed": seed}
        resuming = _reuse(run_dir, marker, log)
        if resuming is None:  # finished already
            runs.append(run_dir)
            continue
        if resuming:
            wanted = rundir.load_config(run_dir).replace(progress="auto")
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / RETRAINED, marker)  # before the run: an interrupted one is then resumed
            wanted = final.replace(seed=seed, run_dir=str(run_dir))
        runs.append(fit(wanted, dataset=dataset, resuming=resuming, log=log))
    finished = [retrain_dir(folder, s, s == seeds[0]) for s in seeds]
    write_recipe(opened, best, final.replace(seed=seeds[0]), [r for r in finished if rundir.is_finished(r)])
    return runs


def _reuse(run_dir: Path, marker: dict, log) -> bool | None:
    """False: train anew; True: resume the unfinished run there; None: it has finished already. A folder holding
    the retraining of another trial (the study has found a better one since) moves aside to <name>-previous-<time>."""
    if not run_dir.exists():
        return False
    same = (run_dir / RETRAINED).is_file() and read_json(run_dir / RETRAINED) == marker
    if same and (run_dir / rundir.CONFIG).exists():
        if rundir.is_finished(run_dir):
            log(f"{run_dir} has retrained trial {marker['trial']} already")
            return None
        log(f"{run_dir} holds an unfinished retraining of trial {marker['trial']}: resuming it")
        return True
    if same:  # stopped before its run began
        return False
    aside = run_dir.with_name(f"{run_dir.name}-previous-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(str(run_dir), aside)
    log(f"{run_dir} held another retraining (of an earlier best trial): moved to {aside}")
    return False


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def write_recipe(opened: Opened, best: FrozenTrial, config: TrainConfig, runs: list[Path]) -> Path:
    """STUDY_DIR/best.toml: the retrained settings (those that differ from the defaults, none of the machine's),
    a recipe that `digitlab train --config` runs; its result line once a retraining has finished."""
    search, defaults = opened.search, TrainConfig()
    tests = []
    for run in runs:
        result = read_json(run / rundir.RESULT)
        averaged = result.get("weights") == rundir.AVERAGE_WEIGHTS
        tests.append((run, model_accuracy(result["test"], "test", averaged), result["train_seconds_total"]))
    summary = (
        f"digitlab tune study {search.name!r}: trial {best.number} of {len(tally(opened.study).trials)}, "
        f"validation accuracy {best.value:.2%} ({search.val_size} held-out images); retrained on the whole "
        f"training set"
    )
    lines = [
        "# Written by digitlab tune: the best trial's settings as a recipe. Run it with",
        f"#   digitlab train --config {search.folder / RECIPE}",
        "[recipe]",
        f"summary = {toml_value(summary)}",
    ]
    if tests:
        accuracies = ", ".join(f"{acc:.2%} (seed {rundir.load_config(run).seed})" for run, acc, _ in tests)
        minutes = sum(seconds for _, _, seconds in tests) / len(tests) / 60
        lines.append(f"result = {toml_value(f'test accuracy {accuracies}; {minutes:.1f} min of training')}")
    lines += ["", "[config]"]
    for name, value in config.to_dict().items():
        named = name in ALWAYS or value != getattr(defaults, name)  # the model and optimisation even at defaults
        if name not in MACHINE and value is not None and named:
            lines.append(f"{name} = {toml_value(value)}")
    path = search.folder / RECIPE
    path.write_text("\n".join(lines) + "\n")
    return path


# --- reopening a study folder (report, --retrain-only) -----------------------------------------------------


def reopen(folder: Path, log=print) -> tuple[dict, optuna.Study]:
    """The study a folder's study.json names, loaded from its storage (read-only use)."""
    recorded = read_json(Path(folder) / STUDY_FILE)
    url = recorded.get("storage") or f"sqlite:///{(Path(folder) / DATABASE).resolve()}"
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=recorded["study_name"], storage=storage)
    except KeyError:
        raise ConfigError(f"{folder}/{STUDY_FILE} names the study {recorded['study_name']!r}, which "
                          f"{shown(url)} does not hold") from None  # fmt: skip
    return recorded | {"url": url}, study
