"""`digitlab calibrate RUN_DIR`: fit the run's temperature and "not a digit" threshold on its validation split and
store them with the run (RUN_DIR/calibration.json), which predict, serve, evaluate and export then use."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

from digitlab.commands.options import DATA_DIR, WEIGHTS

HELP = (
    "calibrate a run's probabilities (temperature scaling) and its 'not a digit' threshold on its validation "
    "split; written to RUN_DIR/calibration.json and used by predict, serve, evaluate and export"
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("calibrate", help=HELP, description=HELP, parents=[DATA_DIR, WEIGHTS])
    parser.add_argument("run_dir", help="a finished run directory trained with --val-size")
    parser.add_argument(
        "--json", action="store_true", help="print the calibration as one JSON document (notes go to stderr)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from digitlab.inference.calibration import CALIBRATION, calibrate_run

    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():  # data notes
        calibration = calibrate_run(Path(args.run_dir), args.data_dir, args.weights)
    if args.json:
        print(json.dumps(dataclasses.asdict(calibration), indent=2))
        return
    c = calibration
    lines = [
        f"temperature {c.temperature:.4f}, fitted on {c.images} validation digits ({c.weights}; accuracy "
        f"{c.accuracy:.2%})",
        f"expected calibration error on validation: {c.ece_before:.2%} before, {c.ece_after:.2%} after "
        f"({c.bins} bins; NLL {c.nll_before:.4f} -> {c.nll_after:.4f})",
    ]
    if c.reject_below is None:
        lines.append("no 'not a digit' threshold (share 0)")
    else:
        lines.append(
            f"'not a digit' below a calibrated confidence of {c.reject_below:.4f}: rejects {c.rejected:.2%} of "
            f"the validation digits (asked: at most {c.reject_share:.2%})"
        )
    lines.append(f"written: {Path(args.run_dir) / CALIBRATION}")
    print("\n".join(lines))
