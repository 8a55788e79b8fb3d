"""The best trial retrained on the whole training set with the test set evaluated once, into STUDY_DIR/best/
(and best-seed-<s>/ for further seeds), and written as STUDY_DIR/best.toml, a recipe that `digitlab train
--config` runs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState

from digitlab.config import TrainConfig
from digitlab.data.dataset import Dataset
from digitlab.errors import ConfigError
from digitlab.store import rundir
from digitlab.store.files import read_json, write_json
from digitlab.training.fit import fit
from digitlab.training.metrics import model_accuracy
from digitlab.tune.progress import tally
from digitlab.tune.study import MACHINE, Opened, load_data

BEST, RECIPE = "best", "best.toml"
RETRAINED = "trial.json"  # in a retraining's run directory: the study, trial and seed it retrains
ALWAYS = {"model", "optimizer", "lr", "batch_size", "epochs"}  # in a recipe even where they are TrainConfig's defaults


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
