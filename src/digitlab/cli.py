"""The `digitlab` command: parses flags into a config and calls one function per subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing

from digitlab.config import SEEDS_HELP, TrainConfig, flag
from digitlab.data.known import DATASET_CHOICES
from digitlab.inference.load import WEIGHT_CHOICES
from digitlab.inference.onnx_model import OPSET


def setting_help(name: str) -> str:
    """The help text of a TrainConfig field, for the subcommands that take the same setting."""
    return next(field.metadata["help"] for field in dataclasses.fields(TrainConfig) if field.name == name)


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, grouped and explained by the field's own metadata."""
    groups = {}
    types = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        group_name = field.metadata["group"]
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(group_name)
        group, text = groups[group_name], field.metadata["help"]
        # "int | None" -> int: None is what the flag's absence means
        kind = next(t for t in typing.get_args(types[field.name]) or (types[field.name],) if t is not type(None))
        if kind is bool:
            group.add_argument(flag(field.name), action="store_true", default=argparse.SUPPRESS, help=text)
            continue
        if field.default is not None:
            text = f"{text} (default: {field.default})"
        group.add_argument(
            flag(field.name), type=kind, default=argparse.SUPPRESS, metavar=field.name.split("_")[-1].upper(), help=text
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitlab",
        description="Train, time, compare and serve handwritten-digit classifiers; reproduce Su (2018).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="obtain and verify the dataset, print its statistics")
    data.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")
    data.add_argument("--dataset", default="auto", choices=DATASET_CHOICES, help=setting_help("dataset"))

    commands.add_parser("models", help="list the models with their parameter counts")
    commands.add_parser("recipes", help="list the shipped training recipes with their measured results")

    train = commands.add_parser("train", help="train a model and write a run directory")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    train.add_argument(
        "--config",
        metavar="RECIPE",
        help="start from a recipe: a name from 'digitlab recipes' or a TOML file of settings; flags override it",
    )
    add_train_flags(train)

    evaluate = commands.add_parser(
        "evaluate",
        help="test accuracy with its 95%% confidence interval, per-class precision and recall, confusion matrix "
        "and misclassified digits of a run (figures and evaluation.json written to RUN_DIR/evaluation/)",
    )
    evaluate.add_argument("run_dir", help="a finished run directory")
    evaluate.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")
    evaluate.add_argument(
        "--json", action="store_true", help="print the evaluation as one JSON document (notes go to stderr)"
    )

    predict = commands.add_parser(
        "predict",
        usage="%(prog)s [-h] [MODEL] [IMAGE ...] [options]",
        help="recognise the digits in your own image files (made MNIST-like first), or classify test digits",
        description="Recognise the digit in each image: a photo, a scan or a drawing, dark on light or light on "
        "dark, is cropped, scaled into 20x20 and centred by mass in 28x28 as MNIST's digits were. With a run "
        "directory and no images, classify MNIST test digits instead.",
    )
    predict.add_argument(
        "inputs",
        nargs="*",
        metavar="[MODEL] IMAGE",
        help="MODEL: a finished run directory or an .onnx file (default: the model shipped with digitlab); then "
        "image files, folders (their images), glob patterns ('digits/*.png') or - for standard input",
    )
    predict.add_argument("--json", action="store_true", help="print the answers as one JSON document")
    predict.add_argument(
        "--show-preprocessed", metavar="DIR", help="write each 28x28 image the model saw into DIR as a PNG"
    )
    predict.add_argument("--device", default="cpu", help="device a run's model runs on (default cpu)")
    predict.add_argument(
        "--test-samples", type=int, help="without images: how many MNIST test digits to classify (default 5)"
    )
    predict.add_argument("--data-dir", help="without images: folder with the four IDX files (default: fetch MNIST)")
    for command in (evaluate, predict):
        command.add_argument(
            "--weights",
            choices=WEIGHT_CHOICES,
            default="auto",
            help="which weights: the moving average where the run kept one (--ema-decay), else the raw ones "
            "(auto, the default); raw; or ema",
        )
    reproduce = commands.add_parser(
        "reproduce", help="reproduce the paper's Tables 2-4 and Figure 3 and write a report"
    )
    reproduce.add_argument(
        "experiments", nargs="+", metavar="EXPERIMENT", help="table2, table3, table4, figure3 or all"
    )
    reproduce.add_argument("--seeds", default="1", help=SEEDS_HELP + " (default 1: seed 0)")
    reproduce.add_argument(
        "--out", default="reproduction", help="folder for the cells and the report (default: reproduction)"
    )
    reproduce.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")
    reproduce.add_argument(
        "--precision", default="fp32", help=setting_help("precision") + " (default: fp32, as the paper)"
    )
    reproduce.add_argument("--device", default="auto", help=setting_help("device"))
    reproduce.add_argument("--threads", type=int, default=0, help="CPU threads (0 = physical cores)")
    reproduce.add_argument(
        "--quick",
        action="store_true",
        help="a small slice of the data and one seed: a smoke test whose numbers are not comparable to the paper",
    )
    reproduce.add_argument("--dry-run", action="store_true", help="list the cells and an estimate of their time")
    reproduce.add_argument(
        "--retime",
        action="store_true",
        help="run again the finished table cells whose timing ran under CPU contention (marked in the report); "
        "their old folders move to OUT/retimed/",
    )
    reproduce.add_argument(
        "--shard",
        metavar="K/N",
        help="run only shard K of N of the cells (cell i goes to shard i mod N + 1), e.g. one task of an array "
        "job with OUT on shared storage; default: the Slurm array task's share when SLURM_ARRAY_TASK_ID is set, "
        "else every cell. A shard builds the report only once the whole grid has finished",
    )

    report = commands.add_parser(
        "report", help="rebuild a reproduction's report from its run directories, or a tune study's (STUDY_DIR)"
    )
    report.add_argument("out", help="a folder written by 'digitlab reproduce' or 'digitlab tune'")

    tune = commands.add_parser(
        "tune",
        help="search a model's hyperparameters with Optuna on a validation split, retrain the best on the whole "
        "training set and write it as a recipe (needs 'digitlab[tune]')",
    )
    tune.add_argument("--model", required=True, help="the model to tune, a name from 'digitlab models'")
    tune.add_argument(
        "--trials",
        type=int,
        default=30,
        help="finished (complete or pruned) trials the study is to have, over all its workers and restarts: a "
        "restarted study runs only the rest (default 30)",
    )
    tune.add_argument(
        "--trial-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="stop each trial at its first validation evaluation past S seconds of training, which is then its "
        "value (default 0: no limit)",
    )
    tune.add_argument("--epochs", type=int, default=3, help="epochs per trial and of the retraining (default 3)")
    tune.add_argument(
        "--space",
        metavar="FILE",
        help="a TOML file whose [space] table overrides the model's search space, setting by setting "
        "(format: digitlab.tune.space)",
    )
    tune.add_argument(
        "--storage",
        metavar="URL",
        help="the study's database (default: SQLite in the study folder); postgresql://USER@HOST:PORT/DB lets "
        "workers on several machines share one study",
    )
    tune.add_argument("--study-name", metavar="NAME", help="the study's name in its storage (default: the model's)")
    tune.add_argument(
        "--out",
        metavar="STUDY_DIR",
        help="the study folder: trials/<number>/, best/, best.toml, REPORT.md (default: studies/<study name>)",
    )
    tune.add_argument("--seed", type=int, default=0, help="every trial's training seed (default 0)")
    tune.add_argument(
        "--val-size", type=int, default=5000, help="training images held out to judge the trials (default 5000)"
    )
    tune.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")
    tune.add_argument("--threads", type=int, default=0, help="CPU threads (0 = physical cores)")
    tune.add_argument("--device", default="auto", help=setting_help("device"))
    retraining = tune.add_mutually_exclusive_group()
    retraining.add_argument(
        "--no-retrain", action="store_true", help="search only (e.g. a worker of a shared study); retrain later"
    )
    retraining.add_argument(
        "--retrain-only", action="store_true", help="skip the search: retrain the study's best trial"
    )
    tune.add_argument(
        "--retrain-seeds",
        metavar="LIST",
        help=f"seeds of the retraining, {SEEDS_HELP}: the first trains into STUDY_DIR/best/, the others into "
        "best-seed-<s>/ (default: --seed)",
    )
    tune.add_argument(
        "--shard",
        metavar="K/N",
        help="retrain only shard K of N of the seeds (default: the Slurm array task's share when "
        "SLURM_ARRAY_TASK_ID is set, else all)",
    )

    compare = commands.add_parser(
        "compare",
        help="runs side by side: the config fields that differ, final loss, accuracy and training seconds, and "
        "their loss and accuracy curves on shared axes (OUT/compare.png)",
    )
    compare.add_argument("runs", nargs="+", metavar="RUN", help="two or more run directories (unfinished ones too)")
    compare.add_argument(
        "--out", metavar="DIR", help="folder for compare.png (default: a new folder compare-<time> here)"
    )

    export = commands.add_parser(
        "export",
        help="write a run's model as a self-contained ONNX file, checked against PyTorch (needs 'digitlab[export]')",
    )
    export.add_argument("model", metavar="MODEL", help="a finished run directory")
    export.add_argument("--format", default="onnx", choices=("onnx",), help="file format (default: onnx)")
    export.add_argument("--out", metavar="FILE", help="where to write it (default: MODEL/model.onnx)")
    export.add_argument(
        "--weights", choices=WEIGHT_CHOICES, default="auto", help="a run's weights: auto (the default), raw or ema"
    )
    export.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset to write (default: {OPSET})")

    serve = commands.add_parser(
        "serve",
        help="a REST API (POST /predict) and a page to draw a digit on, for one model (needs 'digitlab[serve]')",
    )
    serve.add_argument(
        "model", nargs="?", help="a finished run directory or an .onnx file (default: the model shipped with digitlab)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--device", default="cpu", help="device the model runs on (default cpu)")
    serve.add_argument(
        "--weights", choices=WEIGHT_CHOICES, default="auto", help="a run's weights: auto (the default), raw or ema"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from digitlab import commands
    from digitlab.errors import DigitlabError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
            commands.train(given, resume_dir=args.resume, recipe=args.config)
        elif args.command == "data":
            commands.data(args.data_dir, args.dataset)
        elif args.command == "models":
            commands.models()
        elif args.command == "recipes":
            commands.recipes_list()
        elif args.command == "evaluate":
            commands.evaluate_run(args.run_dir, args.data_dir, as_json=args.json, weights=args.weights)
        elif args.command == "predict":
            return commands.predict(
                args.inputs,
                as_json=args.json,
                show_dir=args.show_preprocessed,
                device=args.device,
                weights=args.weights,
                samples=args.test_samples,
                data_dir=args.data_dir,
            )
        elif args.command == "reproduce":
            commands.reproduce(
                args.experiments,
                args.out,
                args.seeds,
                args.data_dir,
                args.precision,
                args.device,
                args.threads,
                args.quick,
                args.dry_run,
                " ".join(["digitlab"] + (argv or sys.argv[1:])),
                retime=args.retime,
                shard=args.shard,
            )
        elif args.command == "report":
            commands.report(args.out)
        elif args.command == "tune":
            search = {
                "model": args.model, "trials": args.trials, "trial_seconds": args.trial_seconds, "epochs": args.epochs,
                "space_file": args.space, "storage": args.storage, "study_name": args.study_name, "out": args.out,
                "seed": args.seed, "val_size": args.val_size, "data_dir": args.data_dir, "threads": args.threads,
                "device": args.device,
            }  # fmt: skip
            retrain = "only" if args.retrain_only else "no" if args.no_retrain else "after"
            commands.tune(search, retrain, args.retrain_seeds, args.shard)
        elif args.command == "compare":
            commands.compare(args.runs, args.out)
        elif args.command == "export":
            commands.export(args.model, args.format, args.out, args.weights, args.opset)
        elif args.command == "serve":
            commands.serve(args.model, args.host, args.port, args.device, args.weights)
    except DigitlabError as error:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process stops alike; one says why
            print(f"digitlab: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
