"""`digitlab compare RUN RUN ...`: runs side by side (the config fields that differ, final numbers) and their
loss and accuracy curves on shared axes (OUT/compare.png)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "runs side by side: the config fields that differ, final loss, accuracy and training seconds, and their loss "
    "and accuracy curves on shared axes (OUT/compare.png)"
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help=HELP)
    parser.add_argument("runs", nargs="+", metavar="RUN", help="two or more run directories (unfinished ones too)")
    parser.add_argument(
        "--out", metavar="DIR", help="folder for compare.png (default: a new folder compare-<time> here)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> Path:
    from digitlab import console
    from digitlab.paper.plots import compare_figure  # matplotlib loads only for the commands that draw
    from digitlab.store import compared_runs

    found = compared_runs.read_runs(args.runs)
    fields = compared_runs.differing(found)
    rows = [{"run": r.label, "config": r.config, "final": r.final(), "state": r.state()} for r in found]
    print(console.format_comparison(rows, fields))
    if not fields:
        print("(their configs are the same but for the run directory)")
    figure = compared_runs.figure_folder(args.out) / "compare.png"
    compare_figure(figure, compared_runs.title(found, fields), [(r.label, compared_runs.curves(r)) for r in found])
    print(f"figure: {figure}")
    return figure
