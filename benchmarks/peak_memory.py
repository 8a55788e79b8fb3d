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
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_MODELS = ("lstm", "blstm", "cnn")
FULL_TRAIN_EXAMPLES = 60000  # MNIST's training set
BYTES_PER_IMAGE = 28 * 28 * 4  # one normalised float32 MNIST image


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def resolve_data_dir(data_dir: str | None) -> str | None:
    if data_dir:
        return data_dir
    return str(SHARED_MNIST) if SHARED_MNIST.is_dir() else None  # else digitlab's own fetch chain


def train_command(args, model: str, run_dir: Path) -> list[str]:
    command = [sys.executable, "-m", "digitlab", "train", "--model", model, "--batch-size", str(args.batch_size),
               "--train-limit", str(args.train_limit), "--epochs", str(args.epochs), "--precision", args.precision,
               "--threads", str(args.threads), "--micro-batch", str(args.micro_batch), "--device", "cpu",
               "--progress", "none", "--run-dir", str(run_dir)]
    data_dir = resolve_data_dir(args.data_dir)
    return command + (["--data-dir", data_dir] if data_dir else [])


def measure(args, model: str, folder: Path) -> dict:
    run_dir = folder / model
    command = train_command(args, model, run_dir)
    log(f"  {model}: {' '.join(command[1:])}")
    started = time.perf_counter()
    with open(folder / f"{model}.log", "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    row = {"model": model, "exit_code": process.returncode, "wall_seconds": seconds,
           "wait4_peak_rss_mb": usage.ru_maxrss / 1024}  # Linux reports kilobytes
    result_file = run_dir / "result.json"
    if process.returncode != 0 or not result_file.is_file():
        row["error"] = (folder / f"{model}.log").read_text()[-2000:]
        log(f"  {model}: FAILED (exit {process.returncode})\n{row['error']}")
        return row
    result = json.loads(result_file.read_text())
    config = json.loads((run_dir / "config.json").read_text())
    examples = args.train_limit or FULL_TRAIN_EXAMPLES
    row |= {"peak_rss_mb": result["peak_rss_mb"], "micro_batch": config.get("micro_batch"),
            "examples": examples, "train_seconds": result.get("train_seconds_total"),
            "est_full_data_mb": result["peak_rss_mb"]
            + max(0, FULL_TRAIN_EXAMPLES - examples) * BYTES_PER_IMAGE / 2 ** 20}
    row["within_limit"] = row["est_full_data_mb"] <= args.limit_mb
    log(f"  {model}: peak RSS {row['peak_rss_mb']:.0f} MB (wait4 {row['wait4_peak_rss_mb']:.0f} MB), "
        f"{seconds:.1f} s")
    return row


def table(rows: list[dict], args) -> list[str]:
    lines = ["| model | batch | micro-batch | examples | peak RSS MB | wait4 MB | est. full-data MB | "
             f"<= {args.limit_mb:g} MB |", "|:---|---:|---:|---:|---:|---:|---:|:---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['model']} | {args.batch_size} | | | failed (exit {row['exit_code']}) | | | no |")
            continue
        lines.append(f"| {row['model']} | {args.batch_size} | {row['micro_batch']} | {row['examples']} | "
                     f"{row['peak_rss_mb']:.0f} | {row['wait4_peak_rss_mb']:.0f} | {row['est_full_data_mb']:.0f} | "
                     f"{'yes' if row['within_limit'] else 'NO'} |")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated models (default: "
                        "lstm,blstm,cnn)")
    parser.add_argument("--batch-size", type=int, default=1000, help="examples per step (default: 1000)")
    parser.add_argument("--train-limit", type=int, default=5000,
                        help="training examples of the short run (default: 5000; 0 = all 60000)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the short run (default: 1)")
    parser.add_argument("--precision", default="fp32", help="fp32 or bf16 (default: fp32)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default 0: the physical cores)")
    parser.add_argument("--micro-batch", type=int, default=0,
                        help="examples per forward/backward pass (default 0: the trainer's choice, 100 on the CPU)")
    parser.add_argument("--data-dir", default=None,
                        help=f"folder with the four IDX files (default: {SHARED_MNIST} when present)")
    parser.add_argument("--limit-mb", type=float, default=1500, help="the allowed peak RSS (default: 1500)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results here as JSON")
    args = parser.parse_args(argv)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    if not args.models:
        parser.error("--models is empty")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log(f"peak memory of digitlab train at batch {args.batch_size}, {args.train_limit or FULL_TRAIN_EXAMPLES} "
        f"examples, {args.epochs} epoch(s), {args.precision}")
    with tempfile.TemporaryDirectory(prefix="digitlab-peak-memory-") as folder:
        rows = [measure(args, model, Path(folder)) for model in args.models]
    print(f"# Peak RSS of `digitlab train`, batch {args.batch_size}, {args.precision}", "",
          f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}, python {sys.version.split()[0]}",
          f"- each run: {args.epochs} epoch(s) on {args.train_limit or FULL_TRAIN_EXAMPLES} training examples, "
          f"then the full test set's evaluation; its own process", "", sep="\n")
    print(*table(rows, args), sep="\n", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"settings": {k: v for k, v in vars(args).items()}, "results": rows},
                                              indent=2) + "\n")
        log(f"results written to {args.json}")
    return 0 if all(row.get("within_limit") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
