"""Where a study lives, and which of its trials' processes have died.

Storage is SQLite in the study folder by default, or any database URL (PostgreSQL for workers on several
machines); a URL's password is never printed or written (shown, without_password). Resuming is the storage's:
finished trials stay finished. A trial whose process died is failed and re-queued with the same parameters
(Optuna's RetryHeartbeatStaleTrialCallback): at once when that process ran on this machine and is gone, else when
its heartbeat has been silent for the grace period.
"""

from __future__ import annotations

import os
import re
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from digitlab.errors import ConfigError
from digitlab.store.files import read_json
from digitlab.tune import STUDY_FILE

DATABASE = "study.db"  # the default storage, in the study folder
# A worker records a heartbeat every HEARTBEAT_SECONDS; a running trial silent for GRACE_SECONDS is failed and
# re-queued by whichever worker looks next. The grace spans several beats, so a busy machine is not taken for dead.
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 60
MAX_RETRIES = 2  # a trial whose process keeps dying (out of memory, say) is given up after this many re-runs


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
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
                # Workers starting at once on a new database: one made the tables (or alembic_version: 'relation
                # already exists', a ProgrammingError) the other was making too; the other's next try finds them.
                racing = isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in str(error)
                if not racing or attempt == 4:
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


def release_dead(study: optuna.Study, storage: optuna.storages.RDBStorage, log: Callable[..., None] = print) -> None:
    """Fail and re-queue (same parameters) the running trials whose process has ended: on this machine at once,
    elsewhere through the heartbeat."""
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
        log(f"trial {trial.number} was left running by a process that has ended (pid {pid}): re-queued")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # the heartbeat: trials of workers silent for the grace period


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
