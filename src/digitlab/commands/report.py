"""`digitlab report OUT`: rebuild a reproduction's report from its run directories, or a tune study's."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rebuild a reproduction's report from its run directories, or a tune study's (STUDY_DIR)"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help=HELP)
    parser.add_argument("out", help="a folder written by 'digitlab reproduce' or 'digitlab tune'")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    build(Path(args.out))


def build(out: Path) -> None:
    """A reproduction's report from its cells, whichever processes or machines trained them, naming the planned
    cells that have not finished; a `digitlab tune` study folder gets the study's report."""
    from digitlab.paper.cells import unfinished
    from digitlab.paper.report import build as build_report
    from digitlab.tune import STUDY_FILE

    if (out / STUDY_FILE).is_file():
        build_study_report(out)
        return
    print(f"report: {build_report(out)}")
    missing = unfinished(out)
    if missing:
        shown = ", ".join(f"{name} ({state})" for name, state in missing[:8])
        more = f" and {len(missing) - 8} more (REPORT.md lists them)" if len(missing) > 8 else ""
        print(f"incomplete: {len(missing)} planned cells have not finished: {shown}{more}")


def build_study_report(folder: Path) -> None:
    from digitlab import tune as tuning

    tuning.require()  # optuna is an optional extra: one line says what to install
    from digitlab.tune.report import build as build_report

    print(f"report: {build_report(folder)}")
