"""`digitlab evaluate RUN_DIR`: a run's test accuracy with its confidence interval, per-class precision and
recall, confusion matrix and misclassified digits (written to RUN_DIR/evaluation/)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from digitlab.commands.options import DATA_DIR, WEIGHTS

HELP = (
    "test accuracy with its 95%% confidence interval, per-class precision and recall, confusion matrix and "
    "misclassified digits of a run (figures and evaluation.json written to RUN_DIR/evaluation/)"
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help=HELP, parents=[DATA_DIR, WEIGHTS])
    parser.add_argument("run_dir", help="a finished run directory")
    parser.add_argument(
        "--json", action="store_true", help="print the evaluation as one JSON document (notes go to stderr)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Print the evaluation as text, or with --json as one JSON document, the only thing on stdout."""
    from digitlab import console
    from digitlab.inference.assessment import assess_run  # matplotlib and scipy load only for this command

    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        record = assess_run(Path(args.run_dir), args.data_dir, args.weights)
    print(json.dumps(record, indent=2) if args.json else console.format_evaluation(record))
