#!/usr/bin/env python
"""Time ONE training epoch of digitlab's trainer against the classic DataLoader loop, side by side.

    .venv/bin/python benchmarks/epoch_time.py [--models lstm,blstm,cnn] [--batch-size 500] [--threads N]
                                              [--repeats 1] [--train-limit 0] [--data-dir DIR]
                                              [--warmup-steps 3] [--micro-batch 0] [--json PATH]

baseline: the loop the paper's readers would write: a torch Dataset whose __getitem__ turns ONE uint8
    image into a float tensor (/255, then (x - 0.1307) / 0.3081, as torchvision's ToTensor + Normalize),
    a DataLoader(dataset, batch_size, shuffle=True) with num_workers=0, and
    `for images, labels in loader: ...; optimizer.zero_grad(); loss.backward(); optimizer.step()`.
digitlab: digitlab.train.train_epoch, the real trainer code path, on a Session built as _fit builds it,
    with the data normalised once into a tensor (that one-time cost is shown in the header, not the table).

Both sides: the same model class and size (same seed), Adam (lr 0.001, betas 0.9/0.99), batch size, thread
count and training examples; the two sides never run at the same time. Each timed epoch is preceded by
--warmup-steps un-timed steps on the same model so one-time oneDNN set-up stays out of the time. With
--repeats > 1 the sides alternate (B D, D B, B D, ...) and the table shows each side's median.

The Markdown report goes to stdout; progress lines go to stderr.

To add a column: a timed side is one function in MEASUREMENTS (bench, model name) -> dict with "seconds";
a derived column is one Column in COLUMNS reading the per-model row.
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from digitlab import distributed, runs
from digitlab.config import TrainConfig
from digitlab.data import MNIST_MEAN, MNIST_STD, Dataset, load, normalize, num_batches, prepare
from digitlab.fetch import find_files
from digitlab.models import build, build_from_config, count_parameters
from digitlab.optim import OPTIMIZERS
from digitlab import train as digitlab_train
from digitlab.train import Progress, Session, seed_everything, synchronize, train_epoch

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_MODELS = ("lstm", "blstm", "cnn")
OPTIMIZER, LR, SEED = "adam", 0.001, 0  # the paper's Adam: digitlab.optim.adam (betas 0.9, 0.99)
DEVICE = torch.device("cpu")


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kilobytes


def cpu_stall_us() -> int | None:
    """/proc/pressure/cpu 'some' total: microseconds during which some task waited for a CPU."""
    line = runs.cpu_pressure()
    if not line or "total=" not in line:
        return None
    return int(line.rpartition("total=")[2].split()[0])


class Timer:
    """Wall seconds of a block (device synchronised at both ends), and the share of them during which some
    task on the machine waited for a CPU: near 0 on a quiet machine; high means a neighbour competed."""

    def __enter__(self) -> "Timer":
        gc.collect()
        synchronize(DEVICE)
        self.stall_before = cpu_stall_us()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(DEVICE)
        self.seconds = time.perf_counter() - self.started
        stall_after = cpu_stall_us()
        self.stall_share = (None if self.stall_before is None or stall_after is None
                            else (stall_after - self.stall_before) / 1e6 / self.seconds)

    def result(self) -> dict:
        return {"seconds": self.seconds, "cpu_stall_share": self.stall_share}


# --------------------------------------------------------------------------------------------- set-up

@dataclass
class Bench:
    """What every measurement works with: one data set, prepared once, and the run's settings."""
    data: Dataset  # after the --train-limit cut; uint8 images, int64 labels
    batch_size: int
    threads: int
    warmup_steps: int
    micro_batch: int  # --micro-batch as given (0 = the trainer's own choice)
    train_images: torch.Tensor  # digitlab: normalised once, float32 (N, H, W)
    train_labels: torch.Tensor
    normalize_seconds: float  # the one-time cost of the line above (digitlab's _fit pays it once per run)

    @property
    def examples(self) -> int:
        return len(self.data.train_images)

    @property
    def steps(self) -> int:
        return num_batches(self.examples, self.batch_size)


def resolve_data_dir(data_dir: str | None) -> str | None:
    """--data-dir, else the shared MNIST copy beside the repository, else None (digitlab's fetch chain)."""
    if data_dir:
        return data_dir
    if find_files(SHARED_MNIST) is not None:
        return str(SHARED_MNIST)
    return None


def make_bench(args) -> Bench:
    data = prepare(load(resolve_data_dir(args.data_dir), log=log), train_limit=args.train_limit)
    if args.batch_size > len(data.train_images):
        raise SystemExit(f"--batch-size {args.batch_size} is larger than the {len(data.train_images)} training "
                         f"examples; lower it or raise --train-limit")
    started = time.perf_counter()
    images = normalize(data.train_images).to(DEVICE)
    normalize_seconds = time.perf_counter() - started
    return Bench(data, args.batch_size, args.threads, args.warmup_steps, args.micro_batch, images,
                 data.train_labels.to(DEVICE), normalize_seconds)


def fresh_model(bench: Bench, model_name: str) -> torch.nn.Module:
    """The model both sides train: digitlab.models.build with the paper's default size, seeded alike."""
    torch.manual_seed(SEED)
    return build(model_name, bench.data.image_shape, bench.data.num_classes).to(DEVICE)


# ----------------------------------------------------------------------------------------- baseline

class ClassicMNIST(torch.utils.data.Dataset):
    """The per-sample Dataset of the usual tutorials: ToTensor + Normalize on one image per __getitem__.
    (torchvision's own MNIST also makes a PIL image per sample first, which this leaves out: this
    baseline is, if anything, faster than the code it stands for.)"""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = torch.from_numpy(self.images[index][None]).contiguous().float().div(255)  # ToTensor: (1, H, W)
        image = image.sub_(MNIST_MEAN).div_(MNIST_STD)  # Normalize((0.1307,), (0.3081,))
        return image, int(self.labels[index])


def classic_loop(model, optimizer, criterion, loader, image_shape, max_steps: int | None = None):
    """The classic training loop, verbatim; stops after max_steps batches when given (warm-up)."""
    loss = None
    for step, (images, labels) in enumerate(loader):
        images = images.reshape(-1, *image_shape)
        out = model(images)
        loss = criterion(out, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if max_steps is not None and step + 1 >= max_steps:
            break
    return loss


def measure_baseline(bench: Bench, model_name: str) -> dict:
    model = fresh_model(bench, model_name)
    optimizer = OPTIMIZERS[OPTIMIZER](model.parameters(), LR)
    criterion = torch.nn.CrossEntropyLoss()
    dataset = ClassicMNIST(bench.data.train_images.numpy(), bench.data.train_labels.numpy())
    loader = torch.utils.data.DataLoader(dataset, batch_size=bench.batch_size, shuffle=True)
    model.train()
    if bench.warmup_steps:
        classic_loop(model, optimizer, criterion, loader, bench.data.image_shape, bench.warmup_steps)
    torch.manual_seed(SEED)  # the shuffle order
    with Timer() as timer:
        loss = classic_loop(model, optimizer, criterion, loader, bench.data.image_shape)
    return timer.result() | {"last_loss": float(loss.item()), "steps": bench.steps}


# ----------------------------------------------------------------------------------------- digitlab

def digitlab_config(bench: Bench, model_name: str, precision: str, run_dir: str) -> TrainConfig:
    """The TrainConfig digitlab.train._fit would run with, including the settings _fit resolves itself.
    (_fit resolves them inline, so this mirrors it: keep the two in step when _fit gains one.)"""
    config = TrainConfig(model=model_name, optimizer=OPTIMIZER, lr=LR, batch_size=bench.batch_size, seed=SEED,
                         threads=bench.threads, device=DEVICE.type, precision=precision, progress="none",
                         run_dir=run_dir)
    if hasattr(config, "micro_batch"):  # as _fit: 0 = CPU_MICRO_BATCH on the CPU, the whole batch on a GPU
        auto = getattr(digitlab_train, "CPU_MICRO_BATCH", bench.batch_size) if DEVICE.type == "cpu" \
            else bench.batch_size
        config = config.replace(micro_batch=bench.micro_batch or auto)
    return config.validate()


def measure_digitlab(bench: Bench, model_name: str, precision: str = "fp32") -> dict:
    """digitlab.train.train_epoch on a Session built as digitlab.train._fit builds one (single process)."""
    with tempfile.TemporaryDirectory(prefix="digitlab-epoch-time-") as run_dir:
        config = digitlab_config(bench, model_name, precision, run_dir)
        seed_everything(config.seed)
        model = build_from_config(config, bench.data.image_shape, bench.data.num_classes).to(DEVICE)
        optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config.lr)
        context = distributed.Context()  # one process, whatever the environment says
        session = Session(config, model, distributed.wrap(model, context, DEVICE), optimizer, None, DEVICE,
                          context, Path(run_dir))
        images, labels = bench.train_images, bench.train_labels
        if bench.warmup_steps:
            warm = bench.warmup_steps * bench.batch_size
            train_epoch(session, images[:warm], labels[:warm], Progress(), None)
        progress = Progress()
        with Timer() as timer:
            losses = train_epoch(session, images, labels, progress, None)
    # "seconds" is the whole call (shuffle order and the steps.jsonl write included, like the baseline's
    # clock); "trainer_seconds" is what the trainer itself records as the epoch's training time.
    return timer.result() | {"trainer_seconds": progress.epoch_seconds, "last_loss": losses[-1],
                             "mean_loss": sum(losses) / len(losses), "steps": len(losses),
                             "micro_batch": getattr(config, "micro_batch", None)}


# --------------------------------------------------------------------------------- the measurements

# Timed sides, in the order a repeat runs them (reversed on odd repeats). Issue 3's bf16 column is one more
# entry: "digitlab bf16": functools.partial(measure_digitlab, precision="bf16").
MEASUREMENTS: dict[str, Callable[[Bench, str], dict]] = {
    "baseline": measure_baseline,
    "digitlab": functools.partial(measure_digitlab, precision="fp32"),
}


@dataclass
class Column:
    heading: str
    cell: Callable[[dict], str]  # the per-model row -> the cell's text
    align: str = "right"


def side_seconds(side: str) -> Callable[[dict], str]:
    return lambda row: f"{row['sides'][side]['seconds']:.2f}"


# A derived column (issue 3's FLOP floor) is one more Column reading the row.
COLUMNS = [
    Column("model", lambda row: row["model"], "left"),
    Column("baseline s", side_seconds("baseline")),
    Column("digitlab s", side_seconds("digitlab")),
    Column("ratio (digitlab/baseline)", lambda row: f"{row['ratio']:.2f}"),
]


def measure_model(bench: Bench, model_name: str, repeats: int) -> dict:
    """Every side `repeats` times, alternating the order; the medians, their ratio and every run."""
    runs_by_side: dict[str, list[dict]] = {side: [] for side in MEASUREMENTS}
    for repeat in range(repeats):
        order = list(MEASUREMENTS) if repeat % 2 == 0 else list(reversed(MEASUREMENTS))
        for side in order:
            if torch.get_num_threads() != bench.threads:
                raise RuntimeError(f"torch threads changed to {torch.get_num_threads()} (expected {bench.threads})")
            result = MEASUREMENTS[side](bench, model_name)
            result |= {"repeat": repeat + 1, "cpu_pressure_after": runs.cpu_pressure(),
                       "peak_rss_mb_after": round(peak_rss_mb(), 1)}
            runs_by_side[side].append(result)
            log(f"  {model_name:<6} {side:<9} repeat {repeat + 1}/{repeats}: {result['seconds']:.2f} s "
                f"(last loss {result['last_loss']:.4f})")
    sides = {side: {"seconds": statistics.median(r["seconds"] for r in results), "runs": results}
             for side, results in runs_by_side.items()}
    return {"model": model_name, "parameters": count_parameters(fresh_model(bench, model_name)), "sides": sides,
            "ratio": sides["digitlab"]["seconds"] / sides["baseline"]["seconds"]}


# ------------------------------------------------------------------------------------------- report

def machine() -> dict:
    return {"cpu": runs.cpu_model(), "physical_cores": runs.physical_cores(), "logical_cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": sys.version.split()[0]}


def markdown_table(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(c.heading for c in COLUMNS) + " |",
             "|" + "|".join(":---" if c.align == "left" else "---:" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(c.cell(row) for c in COLUMNS) + " |" for row in rows]
    return lines


STALL_WARNING = 0.10  # above this share of a timed epoch spent with a task waiting for a CPU, say so


def stall_lines(rows: list[dict]) -> list[str]:
    shares = {f"{row['model']} {side}": max((r["cpu_stall_share"] or 0.0) for r in side_row["runs"])
              for row in rows for side, side_row in row["sides"].items()
              if any(r["cpu_stall_share"] is not None for r in side_row["runs"])}
    if not shares:
        return ["CPU stall during the timed epochs: unknown (no /proc/pressure/cpu)"]
    lines = ["CPU stall during the timed epochs (share of each epoch's wall time in which some task waited for "
             "a CPU, /proc/pressure/cpu): " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())]
    if max(shares.values()) > STALL_WARNING:
        lines.append(f"WARNING: above {STALL_WARNING:.0%}, other processes competed for the cores during timing; "
                     f"these times measure the contention, not the code. Rerun on a quiet machine.")
    return lines


def digitlab_side_note(settings: dict) -> str:
    micro = settings.get("digitlab_micro_batch")
    if micro is None:
        return "digitlab.train.train_epoch, one forward/backward pass per step"
    passes = -(-settings["batch_size"] // micro)
    if passes == 1:
        return (f"digitlab.train.train_epoch with micro-batch {micro} "
                f"(one forward/backward pass per step, as the baseline)")
    return (f"digitlab.train.train_epoch with micro-batch {micro} ({passes} forward/backward passes per step, "
            f"gradients summed; the baseline makes one)")


def header(result: dict) -> list[str]:
    m, s = result["machine"], result["settings"]
    return [
        "# One training epoch: digitlab trainer vs the classic DataLoader loop", "",
        f"- date: {result['date']}",
        f"- machine: {m['cpu']}, {m['physical_cores']} physical cores ({m['logical_cpus']} logical CPUs), "
        f"{m['threads']} torch threads, torch {m['torch']}, python {m['python']}",
        f"- batch size {s['batch_size']}, {s['examples']} training examples ({s['steps']} steps per epoch), "
        f"{OPTIMIZER} lr {LR:g} betas (0.9, 0.99), fp32, seed {SEED}",
        f"- digitlab: {digitlab_side_note(s)}",
        f"- {s['warmup_steps']} un-timed warm-up steps per side before each timed epoch; "
        f"{s['repeats']} repeat{'s' if s['repeats'] > 1 else ''} per side"
        f"{' (medians shown; sides alternate)' if s['repeats'] > 1 else ''}",
        f"- data: {s['data_source']}; digitlab normalises it once into a tensor "
        f"({result['normalize_seconds']:.2f} s, not in the table; the baseline does it per sample, inside its time)",
        f"- cpu pressure before: {result['cpu_pressure_before']}",
    ]


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    pressure_before = runs.cpu_pressure()
    bench = make_bench(args)
    log(f"timing one epoch of {', '.join(args.models)}: {bench.examples} examples, batch {bench.batch_size}, "
        f"{bench.threads} threads")
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
        "settings": {"models": args.models, "batch_size": bench.batch_size, "threads": bench.threads,
                     "examples": bench.examples, "steps": bench.steps, "repeats": args.repeats,
                     "warmup_steps": bench.warmup_steps, "optimizer": OPTIMIZER,
                     "digitlab_micro_batch": getattr(digitlab_config(bench, args.models[0], "fp32", ""),
                                                     "micro_batch", None), "lr": LR, "seed": SEED,
                     "data_source": bench.data.source, "data_verified": bench.data.verified},
        "normalize_seconds": bench.normalize_seconds, "cpu_pressure_before": pressure_before,
    }
    for line in header(result):
        print(line, flush=True)
    rows = [measure_model(bench, name, args.repeats) for name in args.models]
    result |= {"results": rows, "cpu_pressure_after": runs.cpu_pressure(), "peak_rss_mb": round(peak_rss_mb(), 1),
               "peak_rss_note": "whole process; it includes digitlab's normalised copy of the training images, "
                                "which exists while both sides run"}
    print(f"- cpu pressure after:  {result['cpu_pressure_after']}")
    print(f"- peak RSS: {result['peak_rss_mb']:.0f} MB (whole process)", "", sep="\n")
    for line in markdown_table(rows):
        print(line)
    print("", *stall_lines(rows), sep="\n", flush=True)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated models, keys of digitlab.models.MODELS (default: lstm,blstm,cnn)")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="examples per step (default: 500, the paper's Table 4)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for both sides (default 0: the physical cores)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed epochs per side (default: 1); above 1 the sides alternate and medians are shown")
    parser.add_argument("--train-limit", type=int, default=0,
                        help="use the first N training examples (default 0: all)")
    parser.add_argument("--data-dir", default=None,
                        help=f"folder with the four IDX files (default: {SHARED_MNIST} when present, "
                             f"else digitlab's fetch chain)")
    parser.add_argument("--warmup-steps", type=int, default=3,
                        help="un-timed steps per side before each timed epoch (default: 3)")
    parser.add_argument("--micro-batch", type=int, default=0,
                        help="digitlab's examples per forward/backward pass within a step "
                             "(default 0: the trainer's own choice, as `digitlab train` makes it)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results here as JSON")
    args = parser.parse_args(argv)
    from digitlab.models import MODELS
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in args.models if name not in MODELS]
    if unknown or not args.models:
        parser.error(f"unknown model(s) {unknown or args.models}; choose from {', '.join(MODELS)}")
    for name in ("batch_size", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    for name in ("threads", "train_limit", "warmup_steps", "micro_batch"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 or more")
    args.threads = args.threads or runs.physical_cores()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        log(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
