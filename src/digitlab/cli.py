"""The `digitlab` command: parses flags into a config and calls one function per subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing

from digitlab.config import TrainConfig, flag
from digitlab.data.known import DATASET_CHOICES
from digitlab.inference.load import WEIGHT_CHOICES


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

    predict = commands.add_parser("predict", help="classify test digits with a run's model")
    predict.add_argument("run_dir", help="a finished run directory")
    predict.add_argument("--test-samples", type=int, default=5, help="how many test digits to classify (default 5)")
    predict.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")
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
    reproduce.add_argument("--seeds", default="1", help="a count (3 = seeds 0,1,2) or a list (0,1,2) (default 1)")
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

    report = commands.add_parser("report", help="rebuild a reproduction's report from its run directories")
    report.add_argument("out", help="a folder written by 'digitlab reproduce'")
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
            commands.predict(args.run_dir, args.test_samples, args.data_dir, weights=args.weights)
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
            )
        elif args.command == "report":
            commands.report(args.out)
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
