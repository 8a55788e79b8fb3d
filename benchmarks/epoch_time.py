#!/usr/bin/env python
"""Time ONE training epoch of digitlab's trainer against the classic DataLoader loop, side by side.

    .venv/bin/python benchmarks/epoch_time.py [--models lstm,blstm,cnn] [--precisions fp32,bf16]
                                              [--batch-size 500] [--threads N] [--repeats 3]
                                              [--train-limit 0] [--data-dir DIR] [--warmup-steps 3]
                                              [--micro-batch 0] [--matmul-size 2048] [--matmul-repeats 5]
                                              [--json PATH]

baseline: the loop the paper's readers would write: a torch Dataset whose __getitem__ turns ONE uint8
    image into a float tensor (/255, then (x - 0.1307) / 0.3081, as torchvision's ToTensor + Normalize),
    a DataLoader(dataset, batch_size, shuffle=True) with num_workers=0, and
    `for images, labels in loader: ...; optimizer.zero_grad(); loss.backward(); optimizer.step()`.
digitlab: digitlab.train.train_epoch, the real trainer code path, on a Session built as _fit builds it,
    with the data normalised once into a tensor (that one-time cost is shown in the header, not the table);
    once per --precisions entry: fp32, and bf16 = the trainer's precision="bf16" (torch.autocast(cpu,
    bfloat16) around the forward pass; weights, gradients and Adam stay fp32). The baseline runs in fp32.

Both sides: the same model class and size (same seed), Adam (lr 0.001, betas 0.9/0.99), batch size, thread
count and training examples; the two sides never run at the same time. Each timed epoch is preceded by
--warmup-steps un-timed steps on the same model so one-time oneDNN set-up stays out of the time. With
--repeats > 1 the sides alternate (B D32 D16, D16 D32 B, ...) and the table shows each side's median.

The FLOP floor: one epoch's training FLOPs, counted from the built model's sizes (GEMMs and convolutions
only: forward multiply-adds per example x 2 FLOPs x 3 for forward + backward x examples; see epoch_flops),
divided by the machine's measured matmul rate (a --matmul-size square matmul, fp32 and bf16, by torch.mm and
by oneDNN, with the benchmark's threads, before and after the models; the fastest of each dtype counts:
see matmul_kernels for why torch.mm's fp32 alone can understate the machine). "x floor" is
digitlab's time over that floor: how far the epoch is from running the model's arithmetic at GEMM speed.

The Markdown report goes to stdout; progress lines go to stderr.

To add a column: a timed side is one function in MEASUREMENTS (bench, model name) -> dict with "seconds";
a derived column is one Column in columns() reading the per-model row (row["flops"], row["floors"], ...).
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
from torch import nn

from digitlab import distributed, runs
from digitlab.config import TrainConfig
from digitlab.data import MNIST_MEAN, MNIST_STD, Dataset, load, normalize, num_batches, prepare
from digitlab.fetch import find_files
from digitlab.models import (MLP, BiLSTMClassifier, ConvNet, GRUClassifier, LSTMClassifier, build,
                             build_from_config, count_parameters)
from digitlab.optim import OPTIMIZERS
from digitlab import train as digitlab_train
from digitlab.train import Progress, Session, seed_everything, synchronize, train_epoch

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_MODELS = ("lstm", "blstm", "cnn")
OPTIMIZER, LR, SEED = "adam", 0.001, 0  # the paper's Adam: digitlab.optim.adam (betas 0.9, 0.99)
DEVICE = torch.device("cpu")
PRECISIONS = ("fp32", "bf16")  # digitlab's CPU precisions (fp16 needs CUDA)
MATMUL_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


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
    task on the machine waited for a CPU: near 0 on a quiet machine; high means a neighbour competed. Also
    this process's CPU seconds (all its threads, idle-spinning ones included): not inflated by time spent
    waiting for a core, so a cross-check of the wall seconds when the machine is busy."""

    def __enter__(self) -> "Timer":
        gc.collect()
        synchronize(DEVICE)
        self.stall_before = cpu_stall_us()
        self.cpu_started = time.process_time()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(DEVICE)
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        stall_after = cpu_stall_us()
        self.stall_share = (None if self.stall_before is None or stall_after is None
                            else (stall_after - self.stall_before) / 1e6 / self.seconds)

    def result(self) -> dict:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "cpu_stall_share": self.stall_share}


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
    matmul_size: int = 2048
    matmul_repeats: int = 5

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
                 data.train_labels.to(DEVICE), normalize_seconds, args.matmul_size, args.matmul_repeats)


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


# ------------------------------------------------------------------------------------- the FLOP floor

# One epoch's training FLOPs = forward multiply-adds (MACs) per example x 2 FLOPs per MAC x 3 (forward, and a
# backward of about twice the forward: the gradients of the inputs and of the weights) x examples. Only GEMMs
# and convolutions count; gate nonlinearities, pooling, the loss and Adam's update are O(activations) or
# O(parameters) and left out, and so is the input gradient that the first layer does not need: the floor
# is a lower bound on the arithmetic, not an estimate of the time.
FLOPS_PER_MAC, TRAINING_PASSES = 2, 3
RNN_GATES = {nn.LSTM: 4, nn.GRU: 3}  # gate blocks per step: each is a (hidden x (input + hidden)) GEMM


def rnn_macs(rnn: nn.RNNBase, steps: int, top_reverse_steps: int | None = None) -> int:
    """One example's forward MACs of an nn.LSTM / nn.GRU over `steps` time steps: per layer, direction and
    step, gates x hidden x (layer input + hidden). `top_reverse_steps`: the steps the top layer's reverse
    direction takes (None: all of them)."""
    if getattr(rnn, "proj_size", 0):
        raise ValueError("rnn_macs does not count LSTM projections (proj_size > 0)")
    directions = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        width = rnn.input_size if layer == 0 else directions * rnn.hidden_size
        per_step = RNN_GATES[type(rnn)] * rnn.hidden_size * (width + rnn.hidden_size)
        total += per_step * steps  # the forward direction
        if rnn.bidirectional:
            top = layer == rnn.num_layers - 1
            total += per_step * (top_reverse_steps if top and top_reverse_steps is not None else steps)
    return total


def linear_macs(linear: nn.Linear) -> int:
    return linear.in_features * linear.out_features


def conv2d_macs(conv: nn.Conv2d, output_hw: tuple[int, int]) -> int:
    kernel_h, kernel_w = conv.kernel_size
    return conv.out_channels * (conv.in_channels // conv.groups) * kernel_h * kernel_w * output_hw[0] * output_hw[1]


def conv_output_sizes(model: nn.Module, image_shape: tuple[int, int]) -> dict[nn.Conv2d, tuple[int, int]]:
    """Each Conv2d's output (height, width) for one image, read off one forward pass of a blank image."""
    sizes: dict[nn.Conv2d, tuple[int, int]] = {}

    def record(conv: nn.Conv2d, inputs, output: torch.Tensor) -> None:
        sizes[conv] = tuple(output.shape[-2:])

    hooks = [module.register_forward_hook(record) for module in model.modules() if isinstance(module, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *image_shape, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def recurrent_macs(model: nn.Module, image_shape: tuple[int, int], computed_only: bool = True) -> int:
    """LSTM / GRU / BLSTM classifiers: the RNN over the image's rows (one step per row), then the fc head on
    one step's features. For the BLSTM's paper head, which skips the top layer's unread reverse steps
    (models.BiLSTMClassifier.paper_features), `computed_only` counts what it computes: the lower layers'
    both directions over every row, the top layer's forward direction over every row and ONE reverse
    step; computed_only=False counts the full bidirectional network."""
    rnn = model.gru if isinstance(model, GRUClassifier) else model.lstm
    skips = (isinstance(model, BiLSTMClassifier) and model.head == "paper"
             and getattr(model, "skip_unused_steps", False))
    return rnn_macs(rnn, image_shape[0], 1 if skips and computed_only else None) + linear_macs(model.fc)


def feedforward_macs(model: nn.Module, image_shape: tuple[int, int], computed_only: bool = True) -> int:
    """CNN / MLP: every Conv2d at the output size it produces, plus every Linear, once per example."""
    sizes = conv_output_sizes(model, image_shape)
    return (sum(conv2d_macs(conv, size) for conv, size in sizes.items())
            + sum(linear_macs(module) for module in model.modules() if isinstance(module, nn.Linear)))


# One function per model family: (built model, image shape, computed_only) -> forward MACs per example.
FORWARD_MACS: dict[type, Callable[..., int]] = {
    LSTMClassifier: recurrent_macs, BiLSTMClassifier: recurrent_macs, GRUClassifier: recurrent_macs,
    ConvNet: feedforward_macs, MLP: feedforward_macs,
}


def epoch_flops(model: nn.Module, image_shape: tuple[int, int], examples: int,
                computed_only: bool = True) -> int | None:
    """Training FLOPs of one epoch over `examples` (None for a model family without a MACs function)."""
    count = FORWARD_MACS.get(type(model))
    if count is None:
        return None
    return count(model, image_shape, computed_only) * FLOPS_PER_MAC * TRAINING_PASSES * examples


def flop_counts(bench: Bench, model_name: str) -> dict:
    model = fresh_model(bench, model_name)
    computed = epoch_flops(model, bench.data.image_shape, bench.examples)
    full = epoch_flops(model, bench.data.image_shape, bench.examples, computed_only=False)
    return {"epoch_flops": computed, "epoch_flops_full": full,
            "forward_macs_per_example": None if computed is None
            else computed // (FLOPS_PER_MAC * TRAINING_PASSES * bench.examples)}


def matmul_kernels(size: int, dtype: torch.dtype) -> dict[str, Callable[[], object]]:
    """The square matmuls to time, by the library that runs them. torch.mm's fp32 goes to MKL's sgemm, whose
    AVX-512 code paths are not used on every CPU (on AMD EPYC it ran at well under half of oneDNN's rate);
    the models' LSTM and convolution kernels are oneDNN's, so oneDNN's own matmul is timed too, when the
    build has it."""
    generator = torch.Generator().manual_seed(SEED)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    kernels: dict[str, Callable[[], object]] = {"torch.mm": lambda: torch.mm(a, b, out=out)}
    if torch.backends.mkldnn.is_available():
        try:
            a_dnn, b_t_dnn = a.to_mkldnn(), b.t().contiguous().to_mkldnn()  # linear computes a @ weight.T
            torch.ops.aten.mkldnn_linear(a_dnn, b_t_dnn, None)  # fails here if unsupported
            kernels["oneDNN"] = lambda: torch.ops.aten.mkldnn_linear(a_dnn, b_t_dnn, None)
        except (RuntimeError, AttributeError, NotImplementedError):
            pass  # this build or CPU has no oneDNN matmul for the dtype: torch.mm alone counts
    return kernels


def time_matmul(kernel: Callable[[], object], size: int, repeats: int, warmup: int = 1) -> dict:
    """`repeats` timed runs after `warmup` untimed ones: GFLOP/s of the fastest (the floor is what the machine
    can do) and of the median, and per second of this process's CPU time, which waiting for a core does not
    lower (with several threads it is per core, and idle spinning lowers it)."""
    for _ in range(warmup):
        kernel()
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        cpu_started, started = time.process_time(), time.perf_counter()
        kernel()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    flops = 2 * size ** 3
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "gflops": flops / min(seconds) / 1e9,
            "gflops_median": flops / statistics.median(seconds) / 1e9,
            "gflops_per_cpu_second": flops / max(min(cpu_seconds), 1e-9) / 1e9}


def matmul_rate(size: int, dtype: torch.dtype, repeats: int, warmup: int = 1) -> dict:
    """GFLOP/s of a (size x size) @ (size x size) matmul in `dtype` with the current threads, per library
    (matmul_kernels); "gflops" is the fastest library's rate and "kernel" its name."""
    by_kernel = {name: time_matmul(kernel, size, repeats, warmup)
                 for name, kernel in matmul_kernels(size, dtype).items()}
    best = max(by_kernel, key=lambda name: by_kernel[name]["gflops"])
    return {"size": size, "dtype": str(dtype).removeprefix("torch."), "kernel": best,
            "gflops": by_kernel[best]["gflops"], "kernels": by_kernel}


def matmul_rates(bench: Bench, when: str) -> dict:
    rates = {precision: matmul_rate(bench.matmul_size, MATMUL_DTYPES[precision], bench.matmul_repeats)
             for precision in PRECISIONS}
    log(f"  matmul {bench.matmul_size}^3 ({when}): " + "; ".join(
        f"{precision} " + ", ".join(f"{name} {k['gflops']:.1f} GFLOP/s ({k['gflops_per_cpu_second']:.1f} per CPU s)"
                                    for name, k in rate["kernels"].items())
        for precision, rate in rates.items()))
    return rates


# --------------------------------------------------------------------------------- the measurements

# Timed sides, in the order a repeat runs them (reversed on odd repeats): the baseline, then digitlab once per
# precision ("digitlab fp32", "digitlab bf16"). measurements() picks the precisions of a run.
MEASUREMENTS: dict[str, Callable[[Bench, str], dict]] = {
    "baseline": measure_baseline,
    **{f"digitlab {precision}": functools.partial(measure_digitlab, precision=precision) for precision in PRECISIONS},
}


def measurements(precisions: list[str]) -> dict[str, Callable[[Bench, str], dict]]:
    """MEASUREMENTS less the digitlab sides of the precisions not asked for."""
    return {side: measure for side, measure in MEASUREMENTS.items()
            if not side.startswith("digitlab ") or side.removeprefix("digitlab ") in precisions}


@dataclass
class Column:
    heading: str
    cell: Callable[[dict], str]  # the per-model row -> the cell's text
    align: str = "right"


def side_seconds(side: str) -> Callable[[dict], str]:
    return lambda row: f"{row['sides'][side]['seconds']:.2f}"


def number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def columns(precisions: list[str]) -> list[Column]:
    """model | baseline fp32 s | per precision: digitlab s, ratio | per precision: floor s, x floor."""
    cols = [Column("model", lambda row: row["model"], "left"),
            Column("baseline fp32 s", side_seconds("baseline"))]
    for precision in precisions:
        side = f"digitlab {precision}"
        cols += [Column(f"{side} s", side_seconds(side)),
                 Column(f"ratio ({precision}/baseline fp32)", lambda row, side=side: number(row["ratios"][side]))]
    for precision in precisions:
        cols += [Column(f"{precision} floor s", lambda row, p=precision: number(row["floors"][p]["seconds"], 3)),
                 Column(f"{precision} x floor", lambda row, p=precision: number(row["floors"][p]["x_floor"], 1))]
    return cols


def measure_model(bench: Bench, model_name: str, repeats: int,
                  sides: dict[str, Callable[[Bench, str], dict]] | None = None) -> dict:
    """Every side `repeats` times, alternating the order; the medians, their ratios to the baseline, every
    run, and the model's FLOP count (floors are added by add_floors once the matmul rates are known)."""
    sides = MEASUREMENTS if sides is None else sides
    runs_by_side: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(repeats):
        order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
        for side in order:
            if torch.get_num_threads() != bench.threads:
                raise RuntimeError(f"torch threads changed to {torch.get_num_threads()} (expected {bench.threads})")
            result = sides[side](bench, model_name)
            result |= {"repeat": repeat + 1, "cpu_pressure_after": runs.cpu_pressure(),
                       "peak_rss_mb_after": round(peak_rss_mb(), 1)}
            runs_by_side[side].append(result)
            log(f"  {model_name:<6} {side:<13} repeat {repeat + 1}/{repeats}: {result['seconds']:.2f} s "
                f"(process CPU {result['cpu_seconds']:.2f} s; last loss {result['last_loss']:.4f})")
    medians = {side: {"seconds": statistics.median(r["seconds"] for r in results), "runs": results}
               for side, results in runs_by_side.items()}
    baseline = medians["baseline"]["seconds"]
    ratios = {side: row["seconds"] / baseline for side, row in medians.items() if side != "baseline"}
    row = {"model": model_name, "parameters": count_parameters(fresh_model(bench, model_name)), "sides": medians,
           "ratios": ratios, "flops": flop_counts(bench, model_name)}
    if "digitlab fp32" in ratios:
        row["ratio"] = ratios["digitlab fp32"]  # digitlab fp32 / baseline, as before the bf16 side existed
    return row


def add_floors(row: dict, rates: dict, precisions: list[str]) -> None:
    """floor seconds = the epoch's FLOPs / the matmul rate of the precision; x floor = digitlab's seconds / floor."""
    flops = row["flops"]["epoch_flops"]
    row["floors"] = {}
    for precision in precisions:
        seconds = None if flops is None else flops / (rates[precision] * 1e9)
        measured = row["sides"][f"digitlab {precision}"]["seconds"]
        row["floors"][precision] = {"gflops_rate": rates[precision], "seconds": seconds,
                                    "x_floor": None if seconds is None else measured / seconds}


# ------------------------------------------------------------------------------------------- report

def machine() -> dict:
    return {"cpu": runs.cpu_model(), "physical_cores": runs.physical_cores(), "logical_cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": sys.version.split()[0]}


def markdown_table(rows: list[dict], cols: list[Column]) -> list[str]:
    lines = ["| " + " | ".join(c.heading for c in cols) + " |",
             "|" + "|".join(":---" if c.align == "left" else "---:" for c in cols) + "|"]
    lines += ["| " + " | ".join(c.cell(row) for c in cols) + " |" for row in rows]
    return lines


def gflop(flops: int | None) -> str:
    return "n/a" if flops is None else f"{flops / 1e9:.0f}" if flops >= 1e11 else f"{flops / 1e9:.3g}"


def flop_lines(result: dict) -> list[str]:
    s = result["settings"]
    counts = []
    for row in result["results"]:
        flops = row["flops"]
        text = f"{row['model']} {gflop(flops['epoch_flops'])}"
        if flops["epoch_flops_full"] != flops["epoch_flops"]:
            text += f" (what it computes; {gflop(flops['epoch_flops_full'])} for the full bidirectional network)"
        counts.append(text)
    lines = [f"- training GFLOP per epoch ({s['examples']} examples; GEMMs and convolutions only: forward "
             f"multiply-adds x 2 FLOPs x 3 for forward + backward): " + ", ".join(counts)]
    rates = result["matmul"]

    def measured(p: str) -> str:
        before, after = rates["before"][p]["kernels"], rates["after"][p]["kernels"]
        return ", ".join(f"{name} {before[name]['gflops']:.1f} / {after[name]['gflops']:.1f}" for name in before)

    lines.append(f"- matmul GFLOP/s ({s['matmul_size']}x{s['matmul_size']} @ {s['matmul_size']}x{s['matmul_size']}, "
                 f"{s['threads']} threads, fastest of {s['matmul_repeats']} after a warm-up; before / after the "
                 f"models): " + "; ".join(f"{p}: {measured(p)}" for p in PRECISIONS)
                 + ". The floors use the fastest of each precision: " + ", ".join(
                     f"{p} {rate:.1f} GFLOP/s" for p, rate in rates["used_gflops"].items()))
    lines.append("- floor s = the epoch's GFLOP / that precision's matmul rate; x floor = digitlab's seconds / floor")
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
        f"{OPTIMIZER} lr {LR:g} betas (0.9, 0.99), seed {SEED}; baseline fp32, digitlab "
        f"{', '.join(s['precisions'])}",
        f"- digitlab: {digitlab_side_note(s)}"
        + ("; bf16 = its precision \"bf16\": torch.autocast(cpu, bfloat16) around the forward pass, fp32 "
           "weights, gradients and Adam" if "bf16" in s["precisions"] else ""),
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
    log(f"timing one epoch of {', '.join(args.models)} ({', '.join(args.precisions)}): {bench.examples} examples, "
        f"batch {bench.batch_size}, {bench.threads} threads")
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
        "settings": {"models": args.models, "precisions": args.precisions, "batch_size": bench.batch_size,
                     "threads": bench.threads, "examples": bench.examples, "steps": bench.steps,
                     "repeats": args.repeats, "matmul_size": bench.matmul_size,
                     "matmul_repeats": bench.matmul_repeats,
                     "warmup_steps": bench.warmup_steps, "optimizer": OPTIMIZER,
                     "digitlab_micro_batch": getattr(digitlab_config(bench, args.models[0], "fp32", ""),
                                                     "micro_batch", None), "lr": LR, "seed": SEED,
                     "data_source": bench.data.source, "data_verified": bench.data.verified},
        "normalize_seconds": bench.normalize_seconds, "cpu_pressure_before": pressure_before,
    }
    for line in header(result):
        print(line, flush=True)
    rates_before = matmul_rates(bench, "before the models")
    sides = measurements(args.precisions)
    rows = [measure_model(bench, name, args.repeats, sides) for name in args.models]
    rates_after = matmul_rates(bench, "after the models")
    used = {p: max(rates_before[p]["gflops"], rates_after[p]["gflops"]) for p in PRECISIONS}
    for row in rows:
        add_floors(row, used, args.precisions)
    result |= {"results": rows, "matmul": {"before": rates_before, "after": rates_after, "used_gflops": used},
               "cpu_pressure_after": runs.cpu_pressure(), "peak_rss_mb": round(peak_rss_mb(), 1),
               "peak_rss_note": "whole process; it includes digitlab's normalised copy of the training images, "
                                "which exists while every side runs"}
    print(f"- cpu pressure after:  {result['cpu_pressure_after']}")
    print(f"- peak RSS: {result['peak_rss_mb']:.0f} MB (whole process)")
    print(*flop_lines(result), "", sep="\n")
    for line in markdown_table(rows, columns(args.precisions)):
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
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="comma-separated precisions of digitlab's side: fp32, bf16 (default: fp32,bf16); "
                             "the baseline always runs fp32")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed epochs per side (default: 3); above 1 the sides alternate and medians are shown")
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
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="side of the square matmul that measures the GFLOP/s of the floor (default: 2048)")
    parser.add_argument("--matmul-repeats", type=int, default=5,
                        help="timed matmuls per dtype, before and after the models (default: 5)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results here as JSON")
    args = parser.parse_args(argv)
    args.precisions = [name.strip() for name in args.precisions.split(",") if name.strip()]
    wrong = [name for name in args.precisions if name not in PRECISIONS]
    if wrong or not args.precisions or len(set(args.precisions)) != len(args.precisions):
        parser.error(f"--precisions {','.join(args.precisions)}: give each of {', '.join(PRECISIONS)} at most once")
    from digitlab.models import MODELS
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in args.models if name not in MODELS]
    if unknown or not args.models:
        parser.error(f"unknown model(s) {unknown or args.models}; choose from {', '.join(MODELS)}")
    for name in ("batch_size", "repeats", "matmul_size", "matmul_repeats"):
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
