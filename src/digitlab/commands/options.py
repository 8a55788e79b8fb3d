"""Options that several subcommands share, each defined once: parent parsers for --data-dir, --weights and
--threads, a TrainConfig setting's help text, the argv a command was called with, and what predict and read
share: a [MODEL] IMAGE... command line split (split_model) and the answers printed (print_answers)."""

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


def split_model(inputs: list[str]) -> tuple[str | None, list[str]]:
    """predict's and read's [MODEL] IMAGE...: the first argument is the model only if it names one (a run
    directory or an .onnx file); otherwise every argument is an image and the shipped model answers."""
    from digitlab.inference.classifier import is_model  # numpy, not torch: loads only for these commands

    return (inputs[0], list(inputs[1:])) if inputs and is_model(inputs[0]) else (None, list(inputs))


def print_answers(results: list[dict], key: str, source: str, as_json: bool, formatter) -> int:
    """Each file's answer printed (`formatter` over the usable ones, or with --json one document under `key`),
    each unusable file named on stderr in one line; exit code 2 when there was one."""
    import json
    import sys

    failed = [result for result in results if "error" in result]
    for result in failed:
        print(f"digitlab: {result['error']}", file=sys.stderr)
    if as_json:
        print(json.dumps({"model": source, key: results}, indent=2))
    elif len(failed) < len(results):
        print(formatter([result for result in results if "error" not in result]))
    return 2 if failed else 0
