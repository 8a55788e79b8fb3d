"""The trials of a study and the loop that runs them.

A trial samples its settings from the search space (tune.space), trains with fit() into STUDY_DIR/trials/<number>/
on the training set less --val-size held-out images, and reports each validation evaluation (a quarter epoch
apart) to the pruner; the test set is never evaluated (test_eval "none"). Its value is the last validation
accuracy of the run's model. A run that diverges is pruned, not a crash of the study; --trial-seconds stops a run
at the first evaluation past that much training time, and that evaluation is its value.

`--trials N` counts finished (complete or pruned) trials over all workers: a worker takes a trial only while fewer
than N are finished, running or queued, and a trial that loses that race to another worker is dropped before it
trains.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from digitlab.config import TrainConfig
from digitlab.data.batching import num_batches
from digitlab.data.dataset import Dataset
from digitlab.errors import ConfigError, Interrupted, TrainingError
from digitlab.training.fit import fit
from digitlab.training.metrics import model_accuracy
from digitlab.tune import space
from digitlab.tune.progress import TAKEN, Progress, Tally, tally
from digitlab.tune.storage import release_dead, retry_callback, shown, worker
from digitlab.tune.study import EVALUATIONS_PER_EPOCH, Opened, load_data

TRIALS = "trials"  # the trials' run directories, STUDY_DIR/trials/<number>/
POLL_SECONDS = 1.0  # while the remaining trials run on other workers


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


def run(opened: Opened, dataset: Dataset | None = None) -> Tally:
    """Run trials until the study has --trials finished ones (counting every worker's); return the tally."""
    search, study, log = opened.search, opened.study, opened.log
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # Progress says how each trial ended, failures included
    release_dead(study, opened.storage, log)
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
        release_dead(study, opened.storage, log)
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
