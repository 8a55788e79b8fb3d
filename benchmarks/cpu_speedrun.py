"""The CPU record of issue 21 (part 1): the speedrun recipe against the fast recipe, side by side on this machine,
one seed of each in turn, as users run them (`digitlab train --config NAME --seed S`).

    python benchmarks/cpu_speedrun.py                          # seeds 0-4 (--seeds 5), this CPU as it is
    python benchmarks/cpu_speedrun.py --imitate avx2           # the same, with torch narrowed to AVX2 (a laptop)

Per run: training seconds (the run's own clock: warm-up and evaluation apart), the whole command's wall seconds
(start-up, data, evaluation included), the seconds to the first validation evaluation at >= 99% (the fast recipe
stops there; the speedrun recipe evaluates once, at its end), final validation and test accuracy, the precision
`auto` chose, and the CPU pressure during the run. Per recipe: medians, the share of seeds whose test accuracy
reaches 99%, and the speedrun/fast ratios of the medians. --imitate narrows oneDNN and ATen to an older instruction
set (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY) in the training processes: avx512 (AVX-512 without bf16, the Xeon
class) or avx2 (no AVX-512: the laptop class); the report says it was imitated. Finished runs are kept and
reused; writes benchmarks/results/cpu_speedrun[-IMITATED].md and .json (or --stem).
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
import recipes as recipe_table
from digitlab.errors import ConfigError
from digitlab.perf.benchmark_report import Column, log, machine, markdown_table
from digitlab.seeds import SEEDS_HELP, parse_seeds
from digitlab.store import rundir
from digitlab.store.files import read_json, read_rows, write_json

TARGET = recipe_table.TARGET  # 99%
IMITATE = {  # --imitate NAME -> the environment that narrows torch's CPU kernels to that class
    "avx512": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
}


def train(recipe: str, seed: int, run_dir: Path, args) -> float | None:
    """Run `digitlab train --config recipe --seed seed` into run_dir; its wall seconds (None: finished before)."""
    if rundir.is_finished(run_dir):  # kept: a stopped benchmark starts again where it was
        log(f"{run_dir}: finished, kept")
        return read_json(run_dir / "wall.json")["seconds"] if (run_dir / "wall.json").exists() else None
    command = [sys.executable, "-m", "digitlab", "train", "--config", recipe, "--seed", str(seed)]
    command += ["--run-dir", str(run_dir), "--progress", "none"]
    data_dir = common.data_dir(args.data_dir)
    command += ["--data-dir", data_dir] if data_dir else []
    command += shlex.split(args.train_flags)
    environment = os.environ | IMITATE.get(args.imitate, {})
    log(" ".join(command[2:]))
    start = time.perf_counter()
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:  # stop: the runs are timed one after another, and a broken one should be looked at first
        sys.exit(f"cpu_speedrun.py: {' '.join(command[2:])} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    write_json(run_dir / "wall.json", {"seconds": seconds})
    return seconds


def measured(recipe: str, seed: int, run_dir: Path, wall: float | None) -> dict:
    result, config = read_json(run_dir / rundir.RESULT), read_json(run_dir / rundir.CONFIG)
    to_target, _ = recipe_table.time_to_target(run_dir, averaged=False)  # neither recipe keeps a weight average
    pressure = [row.get("cpu_pressure_avg10") or 0.0 for row in read_rows(run_dir / rundir.METRICS)]
    return {
        "recipe": recipe, "seed": seed, "run_dir": str(run_dir), "precision": config["precision"],
        "cpu_kernels": read_json(run_dir / rundir.ENV).get("cpu_kernels"),
        "train_seconds": result["train_seconds_total"], "wall_seconds": wall, "to_99_val_seconds": to_target,
        "val_acc": result["final"].get("val/acc"), "test_acc": result["test"]["test/acc"],
        "max_cpu_pressure_avg10": max(pressure, default=0.0),
    }  # fmt: skip


def summary(runs: list[dict]) -> dict:
    def median(key):
        values = [run[key] for run in runs if run[key] is not None]
        return statistics.median(values) if values else None

    tests = [run["test_acc"] for run in runs]
    return {
        "recipe": runs[0]["recipe"], "precision": runs[0]["precision"], "cpu_kernels": runs[0]["cpu_kernels"],
        "seeds": len(runs),
        "train_seconds": median("train_seconds"), "wall_seconds": median("wall_seconds"),
        "to_99_val_seconds": median("to_99_val_seconds"),
        "reached_99_val": sum(run["to_99_val_seconds"] is not None for run in runs),
        "test_acc_mean": statistics.mean(tests), "test_acc_min": min(tests),
        "test_at_99": sum(acc >= TARGET for acc in tests),
    }  # fmt: skip


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


COLUMNS = [
    Column("recipe", lambda s: f"`{s['recipe']}`", "left"),
    Column("precision", lambda s: s["precision"], "left"),
    Column("training s (median)", lambda s: seconds(s["train_seconds"])),
    Column("vs fast", lambda s: f"{s['ratio_train']:.2f}x"),
    Column("command wall s (median)", lambda s: seconds(s["wall_seconds"])),
    Column("to 99% val s (median), seeds", lambda s: f"{seconds(s['to_99_val_seconds'])}, {s['reached_99_val']}"),
    Column("test acc mean (min)", lambda s: f"{s['test_acc_mean']:.2%} ({s['test_acc_min']:.2%})"),
    Column("seeds >= 99% test", lambda s: f"{s['test_at_99']} of {s['seeds']}"),
]


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--recipes", default="fast,speedrun", help="baseline first, then the others")
    parser.add_argument("--seeds", default="5", help=SEEDS_HELP)
    parser.add_argument("--imitate", choices=sorted(IMITATE), help="narrow torch to an older CPU class")
    parser.add_argument("--runs", default="runs/cpu_speedrun", help="folder for the run directories")
    parser.add_argument("--train-flags", default="", help="more flags for every run, e.g. '--threads 1'")
    parser.add_argument("--stem", default=None, help="results file stem (default: cpu_speedrun[-IMITATED])")
    common.add_data_dir(parser)
    common.add_out(parser)
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ConfigError as error:
        parser.error(str(error))
    recipes = args.recipes.split(",")
    folder = Path(args.runs) / (args.imitate or "native")
    info = machine()
    runs = []
    for seed in seeds:  # one seed of each recipe in turn: a slow spell of the machine hits both
        for recipe in recipes:
            run_dir = folder / f"{recipe}-s{seed}"
            runs.append(measured(recipe, seed, run_dir, train(recipe, seed, run_dir, args)))
    summaries = [summary([run for run in runs if run["recipe"] == recipe]) for recipe in recipes]
    for entry in summaries:
        entry["ratio_train"] = entry["train_seconds"] / summaries[0]["train_seconds"]
    result = common.results(info, imitate=args.imitate, summaries=summaries, runs=runs)
    imitated = f"imitated {args.imitate} ({IMITATE[args.imitate]})" if args.imitate else "native (not narrowed)"
    imitated += f"; the runs' kernels: {runs[-1]['cpu_kernels']}"
    lines = [
        "# CPU speedrun: time to 99% test accuracy, side by side with the fast recipe", "",
        *common.header_lines(result), f"- instruction set: {imitated}", f"- command: `{result['command']}`",
        f"- seeds {', '.join(map(str, seeds))}, one run of each recipe per seed in turn; the highest CPU pressure "
        f"(avg10, %) during any run: {max(run['max_cpu_pressure_avg10'] for run in runs):.1f}", "",
        *markdown_table(summaries, COLUMNS), "",
        "- training s: the run's own clock (warm-up and evaluation apart); vs fast: the ratio of the medians; "
        "command wall s: `digitlab train` from start to exit; to 99% val: the first validation evaluation at >= 99% "
        "(fast stops there; speedrun evaluates once, at its end), the median over the seeds that reached it",
    ]  # fmt: skip
    stem = args.stem or "cpu_speedrun" + (f"-{args.imitate}" if args.imitate else "")
    common.save_report(Path(args.out) / stem, result, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
