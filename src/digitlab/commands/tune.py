"""`digitlab tune`: search a model's hyperparameters with Optuna on a validation split (unless
--retrain-only), retrain the best trial on the whole training set (unless --no-retrain), write its recipe and
the study's report."""

from __future__ import annotations

import argparse

from digitlab.commands.options import DATA_DIR, THREADS, command_line, setting_help
from digitlab.seeds import SEEDS_HELP

HELP = (
    "search a model's hyperparameters with Optuna on a validation split, retrain the best on the whole training "
    "set and write it as a recipe (needs 'digitlab[tune]')"
)
SEARCH_OPTIONS = (  # the flags that make up tune.study.Search, by its field names (and --space: space_file)
    "model", "trials", "trial_seconds", "epochs", "storage", "study_name", "out", "seed", "val_size", "data_dir",
    "threads", "device",
)  # fmt: skip


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("tune", help=HELP, parents=[DATA_DIR, THREADS])
    parser.add_argument("--model", required=True, help="the model to tune, a name from 'digitlab models'")
    parser.add_argument(
        "--trials",
        type=int,
        default=30,
        help="finished (complete or pruned) trials the study is to have, over all its workers and restarts: a "
        "restarted study runs only the rest (default 30)",
    )
    parser.add_argument(
        "--trial-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="stop each trial at its first validation evaluation past S seconds of training, which is then its "
        "value (default 0: no limit)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial and of the retraining (default 3)")
    parser.add_argument(
        "--space",
        metavar="FILE",
        help="a TOML file whose [space] table overrides the model's search space, setting by setting "
        "(format: digitlab.tune.space)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="the study's database (default: SQLite in the study folder); postgresql://USER@HOST:PORT/DB lets "
        "workers on several machines share one study",
    )
    parser.add_argument("--study-name", metavar="NAME", help="the study's name in its storage (default: the model's)")
    parser.add_argument(
        "--out",
        metavar="STUDY_DIR",
        help="the study folder: trials/<number>/, best/, best.toml, REPORT.md (default: studies/<study name>)",
    )
    parser.add_argument("--seed", type=int, default=0, help="every trial's training seed (default 0)")
    parser.add_argument(
        "--val-size", type=int, default=5000, help="training images held out to judge the trials (default 5000)"
    )
    parser.add_argument("--device", default="auto", help=setting_help("device"))
    retraining = parser.add_mutually_exclusive_group()
    retraining.add_argument(
        "--no-retrain", action="store_true", help="search only (e.g. a worker of a shared study); retrain later"
    )
    retraining.add_argument(
        "--retrain-only", action="store_true", help="skip the search: retrain the study's best trial"
    )
    parser.add_argument(
        "--retrain-seeds",
        metavar="LIST",
        help=f"seeds of the retraining, {SEEDS_HELP}: the first trains into STUDY_DIR/best/, the others into "
        "best-seed-<s>/ (default: --seed)",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="retrain only shard K of N of the seeds (default: the Slurm array task's share when "
        "SLURM_ARRAY_TASK_ID is set, else all)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from digitlab import tune as tuning

    tuning.require()  # optuna is an optional extra: one line says what to install
    from digitlab.commands.report import build_study_report
    from digitlab.seeds import parse_seeds
    from digitlab.shard import Shard
    from digitlab.tune import retrain as retraining
    from digitlab.tune import study as studies
    from digitlab.tune import trials as searching

    settings = studies.Search(**{name: getattr(args, name) for name in SEARCH_OPTIONS}, space_file=args.space)
    seeds = parse_seeds(args.retrain_seeds, "--retrain-seeds") if args.retrain_seeds else [settings.seed]
    part = Shard.parse(args.shard) if not args.no_retrain else None  # a bad --shard fails before the search
    opened = studies.open_study(settings, command_line(args), log=say)
    dataset = studies.load_data(opened)
    if not args.retrain_only:
        searching.run(opened, dataset)
    if args.no_retrain:
        again = command_line(args).replace("--no-retrain", "--retrain-only")
        print(f"to retrain the best trial once every worker has finished: {again}")
        return
    retraining.retrain(opened, seeds, part, dataset)
    print(f"recipe: {settings.folder / retraining.RECIPE}")
    build_study_report(settings.folder)


def say(*args, **kwargs) -> None:
    print(*args, **kwargs, flush=True)  # a worker's lines reach a log file as they happen
