"""`digitlab reproduce EXPERIMENT ...`: the paper's Tables 2-4 and Figure 3 as a grid of runs (a shard's share
of it with --shard K/N or in a Slurm array task), then their report."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitlab.commands.options import DATA_DIR, THREADS, command_line, setting_help
from digitlab.seeds import SEEDS_HELP

HELP = "reproduce the paper's Tables 2-4 and Figure 3 and write a report"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("reproduce", help=HELP, parents=[DATA_DIR, THREADS])
    parser.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="table2, table3, table4, figure3 or all")
    parser.add_argument("--seeds", default="1", help=SEEDS_HELP + " (default 1: seed 0)")
    parser.add_argument(
        "--out", default="reproduction", help="folder for the cells and the report (default: reproduction)"
    )
    parser.add_argument(
        "--precision", default="fp32", help=setting_help("precision") + " (default: fp32, as the paper)"
    )
    parser.add_argument("--device", default="auto", help=setting_help("device"))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small slice of the data and one seed: a smoke test whose numbers are not comparable to the paper",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the cells and an estimate of their time")
    parser.add_argument(
        "--retime",
        action="store_true",
        help="run again the finished table cells whose timing ran under CPU contention (marked in the report); "
        "their old folders move to OUT/retimed/",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="run only shard K of N of the cells (cell i goes to shard i mod N + 1), e.g. one task of an array "
        "job with OUT on shared storage; default: the Slurm array task's share when SLURM_ARRAY_TASK_ID is set, "
        "else every cell. A shard builds the report only once the whole grid has finished",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """A shard builds the report only when the whole grid has finished (else it says what is left)."""
    from digitlab.commands import report
    from digitlab.config import TrainConfig
    from digitlab.paper.cells import describe, reproduce, unfinished
    from digitlab.seeds import parse_seeds
    from digitlab.shard import Shard
    from digitlab.training.device import parse_device, resolve_precision

    out = Path(args.out)
    share = Shard.parse(args.shard)  # a bad --shard stops here, before anything is read or written
    base = TrainConfig(
        data_dir=args.data_dir, precision=args.precision, device=args.device, threads=args.threads
    ).validate()
    # An unusable device fails now, not after the data has loaded; `auto` precision is resolved once, so that
    # every cell (and a restarted reproduction) names the precision that ran.
    base = base.replace(precision=resolve_precision(base.precision, parse_device(base.device), print))
    seeds = parse_seeds(args.seeds)
    cells = reproduce(
        args.experiments, out, seeds, base, quick=args.quick, dry_run=args.dry_run, command=command_line(args),
        retime=args.retime, shard=share,
    )  # fmt: skip
    if args.dry_run:
        print(describe(cells, out, examples=60_000, retime=args.retime))
        return
    missing = unfinished(out)
    if not share.whole and missing:
        print(
            f"shard {share}: no report yet, {len(missing)} cells of the grid have not finished (other shards' or "
            f"still to come); once every shard has finished: digitlab report {out}"
        )
        return
    report.build(out)
