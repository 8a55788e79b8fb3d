#!/usr/bin/env python
"""Does bf16 change what the models learn? Test accuracy after N epochs, fp32 vs bf16, over seeds.

    .venv/bin/python benchmarks/precision_accuracy.py [--models lstm,blstm,cnn] [--seeds 3] [--epochs 3]
                                                      [--batch-size 500] [--data-dir DIR] [--out DIR]
                                                      [--train-limit 0] [--test-limit 0]

Each (model, precision, seed) is an ordinary run directory under --out (finished ones are reused when the
script is started again). Prints per model: fp32 and bf16 mean, sd and 95% CI of the final test accuracy,
the paired bf16 - fp32 difference over seeds, and whether bf16's mean lies within fp32's seed-to-seed range.
The header names the machine and its CPU features: bf16 runs as fast as fp32 only with avx512_bf16 or AMX.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import common
from digitlab.config import TrainConfig
from digitlab.models import MODELS
from digitlab.paper.stats import paired, summarize
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import Column
from digitlab.perf.machine import physical_cores
from digitlab.store import rundir
from digitlab.store.files import read_json
from digitlab.training.fit import fit

PRECISIONS = ("fp32", "bf16")


def final_accuracy(config: TrainConfig) -> float:
    run_dir = Path(config.run_dir)
    if not rundir.is_finished(run_dir):
        fit(config, log=lambda *args, **kwargs: None)
    return read_json(run_dir / rundir.RESULT)["final"]["test/acc"]


def compare_model(args, model: str) -> dict:
    """Every seed of the model in both precisions; the row of the table."""
    accuracy = {}
    for precision in PRECISIONS:
        accuracy[precision] = []
        for seed in range(args.seeds):
            run_dir = Path(args.out) / f"{model}-{precision}-s{seed}"
            config = TrainConfig(model=model, precision=precision, seed=seed, epochs=args.epochs, progress="none")
            config = config.replace(batch_size=args.batch_size, data_dir=common.data_dir(args.data_dir))
            config = config.replace(train_limit=args.train_limit, test_limit=args.test_limit, run_dir=str(run_dir))
            accuracy[precision].append(final_accuracy(config))
    fp32, bf16 = summarize(accuracy["fp32"]), summarize(accuracy["bf16"])
    low, high = min(accuracy["fp32"]), max(accuracy["fp32"])
    difference = paired(accuracy["bf16"], accuracy["fp32"]).difference
    row = {"model": model, "accuracy": accuracy, "fp32": fp32, "bf16": bf16, "difference": difference}
    return row | {"fp32_range": (low, high), "within": low <= bf16.mean <= high}


COLUMNS = [
    Column("model", lambda row: row["model"], "left"),
    Column("fp32 acc % (mean ± sd [95% CI])", lambda row: row["fp32"].format(scale=100)),
    Column("bf16 acc %", lambda row: row["bf16"].format(scale=100)),
    Column("bf16 - fp32 (paired)", lambda row: row["difference"].format(scale=100)),
    Column("fp32 seed range", lambda row: "{:.2f}-{:.2f}".format(*(100 * a for a in row["fp32_range"]))),
    Column("bf16 mean within it", lambda row: "yes" if row["within"] else "no"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=common.names(MODELS), default="lstm,blstm,cnn")
    parser.add_argument("--seeds", type=common.positive, default=3)
    parser.add_argument("--epochs", type=common.positive, default=3)
    parser.add_argument("--batch-size", type=common.positive, default=500)
    common.add_data_dir(parser)
    parser.add_argument("--out", default="runs/precision-accuracy")
    parser.add_argument("--train-limit", type=common.count, default=0, help="quick runs: the first N training examples")
    parser.add_argument("--test-limit", type=common.count, default=0, help="quick runs: the first N test examples")
    args = parser.parse_args(argv)
    settings = f"batch {args.batch_size}, Adam lr 0.001, seeds 0..{args.seeds - 1}"
    print(f"# bf16 vs fp32: test accuracy after {args.epochs} epochs, {settings}", "", sep="\n")
    print(
        f"- date: {benchmark_report.now()}",
        *benchmark_report.machine_lines(benchmark_report.machine(threads=physical_cores())),
        "",
        sep="\n",
    )
    print(*benchmark_report.table_header(COLUMNS), sep="\n", flush=True)
    for model in args.models:  # a row as soon as the model's runs are done
        print(benchmark_report.table_row(compare_model(args, model), COLUMNS), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
