#!/usr/bin/env python
"""What checkpointing costs: one training epoch of the paper's LSTM, three ways side by side.

    .venv/bin/python benchmarks/checkpoint_overhead.py [--data-dir ../shared/data/mnist] [--train-limit 20000]
                                                       [--every 0,100,10] [--model lstm] [--batch-size 100]
                                                       [--threads 1] [--out benchmarks/results]

Each variant is a whole digitlab.train.fit() of one epoch (same seed, same data, one after the other in
this process, after an un-timed warm-up fit of 3 steps), into a temporary run directory:

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

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from digitlab import checkpoint, data, runs
from digitlab.config import TrainConfig
from digitlab.resume import CHECKPOINT_LOG
from digitlab.train import fit

REPO = Path(__file__).resolve().parents[1]


def pressure_total() -> float | None:
    """/proc/pressure/cpu's cumulative 'some' stall, in seconds."""
    line = runs.cpu_pressure()
    if not line or "total=" not in line:
        return None
    return int(line.split("total=")[1].split()[0]) / 1e6


def measure(config: TrainConfig, dataset: data.Dataset) -> dict:
    before_line, before_total = runs.cpu_pressure(), pressure_total()
    started = time.perf_counter()
    run_dir = fit(config, dataset=dataset, log=lambda *args, **kwargs: None)
    wall = time.perf_counter() - started
    after_line, after_total = runs.cpu_pressure(), pressure_total()
    (epoch,) = runs.read_rows(run_dir / runs.METRICS)
    writes = runs.read_rows(run_dir / CHECKPOINT_LOG)
    checkpoint_seconds = sum(row["seconds"] for row in writes)
    weights, _ = runs.read_weights(run_dir)
    newest = checkpoint.list_checkpoints(run_dir / runs.CHECKPOINTS)[-1]
    return {
        "checkpoint_every": config.checkpoint_every, "checkpoints": len(writes),
        "checkpoint_bytes": newest.stat().st_size, "train_seconds": epoch["train/seconds"],
        "checkpoint_seconds": checkpoint_seconds,
        "checkpoint_seconds_each": [round(row["seconds"], 4) for row in writes],
        "overhead_percent": 100 * checkpoint_seconds / epoch["train/seconds"],
        "eval_seconds": epoch["eval/seconds"], "wall_seconds": wall,
        "test_acc": epoch["test/acc"], "test_loss": epoch["test/loss"],
        "weights_sha256": hashlib.sha256(b"".join(
            weights[name].numpy().tobytes() for name in sorted(weights))).hexdigest(),
        "cpu_pressure_before": before_line, "cpu_pressure_after": after_line,
        "cpu_stall_percent": (100 * (after_total - before_total) / wall
                              if before_total is not None and after_total is not None else None),
    }


def markdown(result: dict) -> str:
    setup = result["setup"]
    lines = [f"# Checkpoint overhead: one {setup['model']} epoch, checkpointing three ways", "",
             f"- date: {result['date']}",
             f"- machine: {result['machine']}, {setup['threads']} torch thread(s), torch {result['torch']}",
             f"- {setup['model']}, batch {setup['batch_size']}, {setup['train_examples']} training examples "
             f"({setup['steps']} steps), adam lr {setup['lr']}, fp32, seed {setup['seed']}; data: {setup['data']}",
             f"- command: `{result['command']}`", "",
             "| checkpoints | count | size MB | train s | checkpoint s | overhead % of train s | wall s | "
             "CPU stall % | test acc |",
             "|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["variants"]:
        name = "epoch end only" if not row["checkpoint_every"] else \
            f"every {row['checkpoint_every']} steps + epoch end"
        stall = f"{row['cpu_stall_percent']:.0f}" if row["cpu_stall_percent"] is not None else "n/a"
        lines.append(f"| {name} | {row['checkpoints']} | {row['checkpoint_bytes'] / 1e6:.2f} | "
                     f"{row['train_seconds']:.2f} | {row['checkpoint_seconds']:.3f} | {row['overhead_percent']:.2f} | "
                     f"{row['wall_seconds']:.2f} | {stall} | {row['test_acc']:.4f} |")
    same = len({row["weights_sha256"] for row in result["variants"]}) == 1
    lines += ["", f"- final weights identical across variants: {'yes' if same else 'NO'} "
              f"(sha256 {result['variants'][0]['weights_sha256'][:16]}...)",
              "- train s: the trainer's own epoch time, checkpoint writes left out; checkpoint s: the sum of "
              "checkpoints.jsonl's seconds; CPU stall %: growth of /proc/pressure/cpu's `some` total over the "
              "variant's wall time (other processes competing for the cores; 0 on a quiet machine)"]
    for row in result["variants"]:
        lines.append(f"- every {row['checkpoint_every']}: pressure before `{row['cpu_pressure_before']}`, "
                     f"after `{row['cpu_pressure_after']}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--train-limit", type=int, default=20_000)
    parser.add_argument("--every", default="0,100,10", help="--checkpoint-every values, comma-separated")
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args(argv)

    dataset = data.load(args.data_dir, log=lambda *a, **k: None)
    base = TrainConfig(model=args.model, batch_size=args.batch_size, epochs=1, train_limit=args.train_limit,
                       threads=args.threads, device="cpu", progress="none", seed=0)
    examples = min(args.train_limit or len(dataset.train_labels), len(dataset.train_labels))
    steps = data.num_batches(examples, args.batch_size)
    variants = []
    with tempfile.TemporaryDirectory(prefix="digitlab-checkpoint-overhead-") as folder:
        # Un-timed warm-up (a few steps and one checkpoint), so one-time set-up stays out of the first variant.
        fit(base.replace(train_limit=3 * args.batch_size, run_dir=str(Path(folder) / "warm-up")), dataset=dataset,
            log=lambda *a, **k: None)
        for every in (int(value) for value in args.every.split(",")):
            config = base.replace(checkpoint_every=every, run_dir=str(Path(folder) / f"every-{every}"))
            row = measure(config, dataset)
            variants.append(row)
            print(f"every {every}: {row['checkpoints']} checkpoints, {row['checkpoint_seconds']:.3f} s of "
                  f"{row['train_seconds']:.2f} training s = {row['overhead_percent']:.2f}%, wall "
                  f"{row['wall_seconds']:.2f} s, CPU stall {row['cpu_stall_percent']}", flush=True)
    env = runs.environment(torch.device("cpu"))
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": f"{env['cpu']}, {env['physical_cores']} physical cores ({env['cpu_count']} logical CPUs)",
              "torch": env["torch"], "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "setup": {"model": args.model, "batch_size": args.batch_size, "threads": args.threads,
                        "train_examples": examples,
                        "steps": steps, "lr": base.lr, "seed": base.seed, "data": dataset.source},
              "variants": variants}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"checkpoint_overhead-{time.strftime('%Y-%m-%d')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
