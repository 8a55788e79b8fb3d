#!/usr/bin/env python
"""Peak resident memory of `digitlab train` per model at a large batch: a short run each, in its own process.

    .venv/bin/python benchmarks/peak_memory.py [--models lstm,blstm,cnn] [--batch-size 1000]
                                               [--train-limit 5000] [--epochs 1] [--precision fp32]
                                               [--threads 0] [--micro-batch 0] [--data-dir DIR]
                                               [--limit-mb 1500] [--json PATH]

Each model runs `python -m digitlab train --model M --batch-size B --train-limit N --epochs E ...` as a
subprocess (one epoch of training, then the evaluation on the full test set, as a real run) and the table
reports the run's own peak RSS, `peak_rss_mb` of its result.json (getrusage's ru_maxrss, read at the end of
the run), and the same figure as the parent sees it (os.wait4's rusage of that child) as a cross-check.

A run on N < 60000 examples lacks part of the normalised float32 copy of the training images that a full
run holds ((60000 - N) x H x W x 4 bytes, about 172 MB at N = 5000); "est. full-data MB" adds it back.
Everything else (model, activations of one micro-batch, Adam state, the test set) does not grow with N.

Exits 1 when a run fails or any "est. full-data MB" is above --limit-mb (issue 3: 1.5 GB at batch 1000).
The Markdown report goes to stdout; progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common
from digitlab.models import MODELS
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import Column, log
from digitlab.perf.machine import physical_cores
from digitlab.store import rundir
from digitlab.store.files import read_json

DEFAULT_MODELS = ("lstm", "blstm", "cnn")
FULL_TRAIN_EXAMPLES = 60000  # MNIST's training set
BYTES_PER_IMAGE = 28 * 28 * 4  # one normalised float32 MNIST image


def train_command(args, model: str, run_dir: Path) -> list[str]:
    command = [sys.executable, "-m", "digitlab", "train", "--model", model, "--device", "cpu", "--progress", "none"]
    for flag in ("batch_size", "train_limit", "epochs", "precision", "threads", "micro_batch"):
        command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    data_dir = common.data_dir(args.data_dir)
    return command + ["--run-dir", str(run_dir)] + (["--data-dir", data_dir] if data_dir else [])


def measure(args, model: str, folder: Path) -> dict:
    run_dir, output_file = folder / model, folder / f"{model}.log"
    command = train_command(args, model, run_dir)
    log(f"  {model}: {' '.join(command[1:])}")
    started = time.perf_counter()
    with open(output_file, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=common.REPO)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    row = {"model": model, "exit_code": process.returncode, "wall_seconds": seconds}
    row["wait4_peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports kilobytes
    if process.returncode != 0 or not rundir.is_finished(run_dir):
        row["error"] = output_file.read_text()[-2000:]
        log(f"  {model}: FAILED (exit {process.returncode})\n{row['error']}")
        return row
    result, config = read_json(run_dir / rundir.RESULT), read_json(run_dir / rundir.CONFIG)
    examples = args.train_limit or FULL_TRAIN_EXAMPLES
    missing_mb = max(0, FULL_TRAIN_EXAMPLES - examples) * BYTES_PER_IMAGE / 2**20
    row |= {"peak_rss_mb": result["peak_rss_mb"], "micro_batch": config.get("micro_batch"), "examples": examples}
    row |= {"train_seconds": result.get("train_seconds_total"), "est_full_data_mb": result["peak_rss_mb"] + missing_mb}
    row["within_limit"] = row["est_full_data_mb"] <= args.limit_mb
    log(f"  {model}: peak RSS {row['peak_rss_mb']:.0f} MB (wait4 {row['wait4_peak_rss_mb']:.0f} MB), {seconds:.1f} s")
    return row


def verdict(row: dict) -> str:
    return "no" if "error" in row else "yes" if row["within_limit"] else "NO"


def columns(args) -> list[Column]:
    def measured(key: str, text=lambda mb: f"{mb:.0f}") -> Callable[[dict], str]:
        """The cell of a measured figure: empty for a failed run."""
        return lambda row: "" if "error" in row else text(row[key])

    failed = "failed (exit {exit_code})"
    return [
        Column("model", lambda row: row["model"], "left"),
        Column("batch", lambda row: str(args.batch_size)),
        Column("micro-batch", measured("micro_batch", str)),
        Column("examples", measured("examples", str)),
        Column("peak RSS MB", lambda row: failed.format(**row) if "error" in row else f"{row['peak_rss_mb']:.0f}"),
        Column("wait4 MB", measured("wait4_peak_rss_mb")),
        Column("est. full-data MB", measured("est_full_data_mb")),
        Column(f"<= {args.limit_mb:g} MB", verdict, "center"),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__)
    add = parser.add_argument
    add("--models", type=common.names(MODELS), default=",".join(DEFAULT_MODELS), help="comma-separated models")
    add("--batch-size", type=common.positive, default=1000, help="examples per step")
    add("--train-limit", type=common.count, default=5000, help="training examples of the short run (0: all 60000)")
    add("--epochs", type=common.positive, default=1, help="epochs of the short run")
    add("--precision", default="fp32", choices=["fp32", "bf16"])
    add("--threads", type=common.count, default=0, help="CPU threads (0: the physical cores)")
    add("--micro-batch", type=common.count, default=0, help="examples per forward/backward pass (0: the trainer's)")
    common.add_data_dir(parser)
    add("--limit-mb", type=float, default=1500, help="the allowed peak RSS")
    add("--json", default=None, metavar="PATH", help="also write the results here as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    examples = args.train_limit or FULL_TRAIN_EXAMPLES
    date, info = (
        benchmark_report.now(),
        benchmark_report.machine(threads=args.threads or physical_cores()),
    )  # the runs' threads
    log(f"peak memory of digitlab train at batch {args.batch_size}, {examples} examples, {args.epochs} epoch(s)")
    with tempfile.TemporaryDirectory(prefix="digitlab-peak-memory-") as folder:
        rows = [measure(args, model, Path(folder)) for model in args.models]
    print(f"# Peak RSS of `digitlab train`, batch {args.batch_size}, {args.precision}", "", sep="\n")
    print(f"- date: {date}", *benchmark_report.machine_lines(info), sep="\n")
    each = f"{args.epochs} epoch(s) on {examples} training examples, then the full test set's evaluation"
    print(f"- each run: {each}; its own process", "", sep="\n")
    print(*benchmark_report.markdown_table(rows, columns(args)), sep="\n", flush=True)
    if args.json:
        common.save_json(args.json, {"date": date, "settings": vars(args), "machine": info, "results": rows})
        log(f"results written to {args.json}")
    return 0 if all(row.get("within_limit") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
