"""The recipes' results: each named recipe trained with several seeds on the real MNIST, one run at a time,
then a table of test accuracy (mean ± std over seeds), training minutes and time-to-99% validation accuracy.

    python benchmarks/recipes.py                       # fast, cnn-classic, lstm-best, cnn-best; seeds 0, 1, 2
    python benchmarks/recipes.py --recipes fast --seeds 0,1,2 --out runs/recipes

Resumable: a finished run is kept, an unfinished one is continued (`digitlab train --resume`), so the
script can be stopped and started again. The runs go one after another, never side by side (they are
timed); the CPU pressure during each is recorded beside it. The table goes to
benchmarks/results/recipes.md and .json (`--name` names another file stem).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import common
from digitlab.errors import ConfigError
from digitlab.perf.benchmark_report import log
from digitlab.recipes import load as load_recipe
from digitlab.seeds import SEEDS_HELP, parse_seeds
from digitlab.store import rundir
from digitlab.store.files import read_json, read_rows, write_json
from digitlab.training.metrics import model_accuracy

DEFAULT_RECIPES = ["fast", "cnn-classic", "lstm-best", "cnn-best"]
TARGET = 0.99  # time-to-99%: the first validation evaluation at or above it


def train(recipe: str, seed: int, run_dir: Path, data_dir: str | None) -> None:
    if rundir.is_finished(run_dir):
        log(f"{run_dir}: finished, kept")
        return
    digitlab = [sys.executable, "-m", "digitlab", "train", "--progress", "none"]
    if (run_dir / rundir.CONFIG).exists():
        arguments = digitlab + ["--resume", str(run_dir)]
    else:
        arguments = digitlab + ["--config", recipe, "--seed", str(seed), "--run-dir", str(run_dir)]
        arguments += ["--data-dir", data_dir] if data_dir else []
    log(" ".join(arguments[2:]))
    log_path = run_dir.parent / f"{run_dir.name}.log"
    with open(log_path, "a") as output:
        code = subprocess.run(arguments, stdout=output, stderr=subprocess.STDOUT).returncode
    if code:
        # Stop here: the runs are timed one after another, and a broken one should be looked at first.
        sys.exit(f"recipes.py: {' '.join(arguments[2:])} failed (exit {code}); see {log_path}, then run this again")


def time_to_target(run_dir: Path, averaged: bool) -> tuple[float | None, str]:
    """Training seconds to the first validation evaluation >= TARGET, and how often the run evaluated."""
    result = read_json(run_dir / rundir.RESULT)
    config = read_json(run_dir / rundir.CONFIG)
    every = f"every {config['eval_every']} steps" if config["eval_every"] else "at epoch ends"
    for row in read_rows(run_dir / rundir.EVALUATIONS):
        accuracy = model_accuracy(row, "val", averaged)
        if accuracy is not None and accuracy >= TARGET:
            return row["train_seconds"], every
    target = result.get("target")
    return (target["train_seconds"] if target and target.get("reached") else None), every


def summarize(recipe: str, run_dirs: list[Path]) -> dict:
    runs = []
    for run_dir in run_dirs:
        result = read_json(run_dir / rundir.RESULT)
        averaged = result.get("weights") == rundir.AVERAGE_WEIGHTS
        seconds, every = time_to_target(run_dir, averaged)
        pressure = [row.get("cpu_pressure_avg10") or 0.0 for row in read_rows(run_dir / rundir.METRICS)]
        runs.append({
            "run_dir": str(run_dir), "test_acc": model_accuracy(result["test"], "test", averaged),
            "train_minutes": result["train_seconds_total"] / 60, "epochs": result["epochs"],
            "time_to_99_seconds": seconds, "evaluated": every, "max_cpu_pressure_avg10": max(pressure, default=0.0),
        })  # fmt: skip
    accuracies = [run["test_acc"] for run in runs]
    to_target = [run["time_to_99_seconds"] for run in runs]
    return {
        "recipe": recipe, "seeds": len(runs), "runs": runs,
        "test_acc_mean": statistics.mean(accuracies),
        "test_acc_std": statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
        "train_minutes_mean": statistics.mean(run["train_minutes"] for run in runs),
        "time_to_99_seconds_mean": statistics.mean(to_target) if None not in to_target else None,
        "time_to_99_reached": sum(value is not None for value in to_target),
    }  # fmt: skip


def table(summaries: list[dict], seeds: list[int]) -> str:
    lines = [
        "| recipe | model | test accuracy (mean ± std) | training minutes (mean) | time to 99% val | command |",
        "|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        recipe = load_recipe(summary["recipe"])
        config = recipe.settings
        reached = summary["time_to_99_reached"]
        to_target = (
            f"{summary['time_to_99_seconds_mean']:.0f} s ({summary['runs'][0]['evaluated']})"
            if summary["time_to_99_seconds_mean"] is not None
            else f"reached in {reached} of {summary['seeds']}"
        )
        lines.append(
            f"| `{summary['recipe']}` | {config['model']} | {summary['test_acc_mean']:.2%} ± "
            f"{summary['test_acc_std']:.2%} ({summary['seeds']} seeds) | {summary['train_minutes_mean']:.1f} | "
            f"{to_target} | "
            f"`digitlab train --config {summary['recipe']} --seed S` (S = {', '.join(map(str, seeds))}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=",".join(DEFAULT_RECIPES), help="comma-separated recipe names")
    parser.add_argument("--seeds", default="3", help=f"{SEEDS_HELP} (default 3: seeds 0,1,2)")
    parser.add_argument("--out", default="runs/recipes", help="folder for the run directories")
    parser.add_argument("--summary-only", action="store_true", help="only rebuild the table from finished runs")
    parser.add_argument(
        "--name", default="recipes", help="results file stem under benchmarks/results (default: recipes)"
    )
    common.add_data_dir(parser)
    args = parser.parse_args()
    try:
        seeds = parse_seeds(args.seeds)
    except ConfigError as error:
        parser.error(str(error))
    recipes, out = args.recipes.split(","), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    for recipe in recipes:
        run_dirs = [out / f"{recipe}-s{seed}" for seed in seeds]
        if not args.summary_only:
            for seed, run_dir in zip(seeds, run_dirs):
                train(recipe, seed, run_dir, common.data_dir(args.data_dir))
        finished = [run_dir for run_dir in run_dirs if rundir.is_finished(run_dir)]
        if finished:
            summaries.append(summarize(recipe, finished))
    if not summaries:
        sys.exit(f"recipes.py: no finished run of {', '.join(recipes)} in {out}; run it without --summary-only")
    environment = read_json(Path(summaries[0]["runs"][0]["run_dir"]) / rundir.ENV)
    text = table(summaries, seeds)
    print(text)
    common.RESULTS.mkdir(exist_ok=True)
    write_json(
        common.RESULTS / f"{args.name}.json",
        {"command": common.command(), "environment": environment, "recipes": summaries},
    )
    machine = (
        f"{environment.get('cpu')}, {environment.get('threads')} torch threads, torch {environment.get('torch')}, "
        f"precision fp32; the highest CPU pressure (avg10, %) during any run: "
        f"{max(run['max_cpu_pressure_avg10'] for summary in summaries for run in summary['runs']):.1f}"
    )
    (common.RESULTS / f"{args.name}.md").write_text(f"`{common.command()}`\n\nMachine: {machine}\n\n{text}\n")


if __name__ == "__main__":
    main()
