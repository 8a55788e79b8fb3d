"""Options that several subcommands share, each defined once: parent parsers for --data-dir, --weights and
--threads, a TrainConfig setting's help text, and the argv a command was called with."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from digitlab.config import TrainConfig
from digitlab.inference.load import WEIGHT_CHOICES


def setting_help(name: str) -> str:
    """The help text of a TrainConfig field, for the subcommands that take the same setting."""
    return next(field.metadata["help"] for field in dataclasses.fields(TrainConfig) if field.name == name)


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


DATA_DIR = _parent()
DATA_DIR.add_argument("--data-dir", help=setting_help("data_dir"))

WEIGHTS = _parent()
WEIGHTS.add_argument(
    "--weights",
    choices=WEIGHT_CHOICES,
    default="auto",
    help="which weights of a run: the moving average where the run kept one (--ema-decay), else the raw ones "
    "(auto, the default); raw; or ema",
)

THREADS = _parent()
THREADS.add_argument("--threads", type=int, default=0, help=setting_help("threads"))


def command_line(args: argparse.Namespace) -> str:
    """The command as it was called (`digitlab reproduce ...`), from the argv cli.main parsed, not sys.argv:
    main(argv) may be called with other arguments than the process's."""
    argv = args.argv if args.argv is not None else sys.argv[1:]
    return " ".join(["digitlab", *argv])
