#!/usr/bin/env python
"""What checkpointing costs: one training epoch of the paper's LSTM, three ways side by side.

    .venv/bin/python benchmarks/checkpoint_overhead.py [--data-dir ../shared/data/mnist] [--train-limit 20000]
                                                       [--every 0,100,10] [--model lstm] [--batch-size 100]
                                                       [--threads 1] [--out benchmarks/results]

Each variant is a whole digitlab.training.fit.fit() of one epoch (same seed, same data, one after the other
in this process, after an un-timed warm-up fit of 3 steps), into a temporary run directory:

    --checkpoint-every 0    the epoch-end checkpoint only (every run writes one)
    --checkpoint-every 100  also one every 100 steps
    --checkpoint-every 10   also one every 10 steps (to show how the cost scales)

Per variant: the epoch's training seconds as the trainer records them (metrics.jsonl's train/seconds, which
leave checkpoint writes out), the checkpoint seconds (checkpoints.jsonl: for each checkpoint, gathering the
state, serialising it, writing, flushing and fsyncing a temporary file, renaming it, fsyncing the folder and
pruning old ones), their ratio in percent, the number of checkpoints and their size, and the wall time of the
whole fit() call (data preparation, evaluation and the final files included). Checkpointing must not change
the training: the final weights' sha256 is printed for each variant and must agree.

The machine's CPU pressure (/proc/pressure/cpu) is read before and after each variant: when other work
competes for the cores, the seconds measure that contention as much as the code.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

import common
from digitlab.config import TrainConfig
from digitlab.data.batching import num_batches
from digitlab.data.dataset import Dataset, load
from digitlab.models import MODELS
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import Column, log
from digitlab.perf.machine import cpu_pressure
from digitlab.perf.timer import Timer
from digitlab.store import rundir
from digitlab.store.checkpoint import list_checkpoints
from digitlab.store.files import read_rows
from digitlab.training.fit import fit


def quiet(*args, **kwargs) -> None:
    pass


def measure(config: TrainConfig, dataset: Dataset) -> dict:
    before_line = cpu_pressure()
    with Timer() as timer:
        run_dir = fit(config, dataset=dataset, log=quiet)
    after_line = cpu_pressure()
    (epoch,) = read_rows(run_dir / rundir.METRICS)
    writes = read_rows(run_dir / rundir.CHECKPOINT_LOG)
    checkpoint_seconds = sum(row["seconds"] for row in writes)
    weights, _ = rundir.read_weights(run_dir)
    digest = hashlib.sha256(b"".join(weights[name].numpy().tobytes() for name in sorted(weights))).hexdigest()
    return {
        "checkpoint_every": config.checkpoint_every,
        "checkpoints": len(writes),
        "checkpoint_bytes": list_checkpoints(run_dir / rundir.CHECKPOINTS)[-1].stat().st_size,
        "train_seconds": epoch["train/seconds"],
        "checkpoint_seconds": checkpoint_seconds,
        "checkpoint_seconds_each": [round(row["seconds"], 4) for row in writes],
        "overhead_percent": 100 * checkpoint_seconds / epoch["train/seconds"],
        "eval_seconds": epoch["eval/seconds"],
        "wall_seconds": timer.seconds,
        "test_acc": epoch["test/acc"],
        "test_loss": epoch["test/loss"],
        "weights_sha256": digest,
        "cpu_pressure_before": before_line,
        "cpu_pressure_after": after_line,
        "cpu_stall_percent": None if timer.stall_share is None else 100 * timer.stall_share,
    }


def variant_name(row: dict) -> str:
    every = row["checkpoint_every"]
    return f"every {every} steps + epoch end" if every else "epoch end only"


COLUMNS = [
    Column("checkpoints", variant_name, "left"),
    Column("count", lambda row: str(row["checkpoints"])),
    Column("size MB", lambda row: f"{row['checkpoint_bytes'] / 1e6:.2f}"),
    Column("train s", lambda row: f"{row['train_seconds']:.2f}"),
    Column("checkpoint s", lambda row: f"{row['checkpoint_seconds']:.3f}"),
    Column("overhead % of train s", lambda row: f"{row['overhead_percent']:.2f}"),
    Column("wall s", lambda row: f"{row['wall_seconds']:.2f}"),
    Column("CPU stall %", lambda row: benchmark_report.number(row["cpu_stall_percent"], 0)),
    Column("test acc", lambda row: f"{row['test_acc']:.4f}"),
]


def markdown(result: dict) -> str:
    setup, variants = result["setup"], result["variants"]
    same = len({row["weights_sha256"] for row in variants}) == 1
    lines = [
        f"# Checkpoint overhead: one {setup['model']} epoch, checkpointing three ways",
        "",
        *common.header_lines(result),
        f"- {setup['model']}, batch {setup['batch_size']}, {setup['train_examples']} training examples "
        f"({setup['steps']} steps), adam lr {setup['lr']}, fp32, seed {setup['seed']}; data: {setup['data']}",
        f"- command: `{result['command']}`",
        "",
        *benchmark_report.markdown_table(variants, COLUMNS),
        "",
        f"- final weights identical across variants: {'yes' if same else 'NO'} "
        f"(sha256 {variants[0]['weights_sha256'][:16]}...)",
        "- train s: the trainer's own epoch time, checkpoint writes left out; checkpoint s: the sum of "
        "checkpoints.jsonl's seconds; CPU stall %: growth of /proc/pressure/cpu's `some` total over the "
        "variant's wall time (other processes competing for the cores; 0 on a quiet machine)",
        *benchmark_report.pressure_lines(variants, lambda row: f"every {row['checkpoint_every']}"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    common.add_data_dir(parser)
    parser.add_argument("--train-limit", type=common.count, default=20_000, help="training examples (0: all)")
    parser.add_argument("--every", default="0,100,10", help="--checkpoint-every values, comma-separated")
    parser.add_argument("--model", default="lstm", choices=list(MODELS))
    parser.add_argument("--batch-size", type=common.positive, default=100)
    parser.add_argument("--threads", type=common.positive, default=1)
    common.add_out(parser)
    args = parser.parse_args(argv)
    every = [int(value) for value in args.every.split(",")]

    dataset = load(common.data_dir(args.data_dir), log=quiet)
    base = TrainConfig(model=args.model, batch_size=args.batch_size, train_limit=args.train_limit, threads=args.threads)
    base = base.replace(epochs=1, device="cpu", progress="none", seed=0)
    examples = min(args.train_limit or len(dataset.train_labels), len(dataset.train_labels))
    info = benchmark_report.machine(threads=args.threads)
    variants = []
    with tempfile.TemporaryDirectory(prefix="digitlab-checkpoint-overhead-") as folder:
        # Un-timed warm-up (a few steps and one checkpoint), so one-time set-up stays out of the first variant.
        warm_up = base.replace(train_limit=3 * args.batch_size, run_dir=str(Path(folder) / "warm-up"))
        fit(warm_up, dataset=dataset, log=quiet)
        for value in every:
            row = measure(base.replace(checkpoint_every=value, run_dir=str(Path(folder) / f"every-{value}")), dataset)
            variants.append(row)
            log(
                f"every {value}: {row['checkpoints']} checkpoints, {row['checkpoint_seconds']:.3f} s of "
                f"{row['train_seconds']:.2f} training s = {row['overhead_percent']:.2f}%, wall "
                f"{row['wall_seconds']:.2f} s, CPU stall {benchmark_report.number(row['cpu_stall_percent'], 0)} %"
            )
    setup = {"model": args.model, "batch_size": args.batch_size, "threads": args.threads, "train_examples": examples}
    setup |= {"steps": num_batches(examples, args.batch_size), "lr": base.lr, "seed": base.seed, "data": dataset.source}
    result = common.results(info, torch=info["torch"], setup=setup, variants=variants)
    stem = Path(args.out) / f"checkpoint_overhead-{time.strftime('%Y-%m-%d')}"
    common.save_report(stem, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
