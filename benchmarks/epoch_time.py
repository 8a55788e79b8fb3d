#!/usr/bin/env python
"""Time ONE training epoch of digitlab's trainer against the classic DataLoader loop, side by side.

    .venv/bin/python benchmarks/epoch_time.py [--models lstm,blstm,cnn] [--precisions fp32,bf16]
                                              [--batch-size 500] [--threads N] [--repeats 3]
                                              [--train-limit 0] [--data-dir DIR] [--warmup-steps 3]
                                              [--micro-batch 0] [--matmul-size 2048] [--matmul-repeats 5]
                                              [--json PATH]

baseline: the loop the paper's readers would write (one_epoch.classic_epoch): a torch Dataset whose
    __getitem__ turns ONE uint8 image into a float tensor (/255, then (x - 0.1307) / 0.3081, as torchvision's
    ToTensor + Normalize), a DataLoader(dataset, batch_size, shuffle=True) with num_workers=0, and
    zero_grad / backward / step per batch. It runs in fp32.
digitlab: training.loop.train_epoch, the trainer's own code path, on a Session built as fit() builds it
    (one_epoch.trainer_epoch), with the data normalised once into a tensor (that one-time cost is
    in the header, not the table); once per --precisions entry: fp32, and bf16 = precision "bf16"
    (torch.autocast(cpu, bfloat16) around the forward pass; weights, gradients and Adam stay fp32).

Both sides: the same model class and size (same seed), Adam (lr 0.001, betas 0.9/0.99), batch size, threads
and training examples; they never run at the same time. Each timed epoch follows --warmup-steps un-timed
steps on the same model, so one-time oneDNN set-up stays out of the time. With --repeats > 1 the sides
alternate (B D32 D16, D16 D32 B, ...) and the table shows each side's median (digitlab.perf.compare).

The FLOP floor: the epoch's training FLOPs (digitlab.perf.flops) over the machine's matmul rate, measured
before and after the models (digitlab.perf.matmul; the fastest library and run of each dtype counts).
"x floor" is digitlab's time over that floor: how far the epoch is from running its arithmetic at GEMM speed.

The Markdown report goes to stdout; progress lines go to stderr. To add a timed side: one entry in sides()
(a callable returning Timer.result() and more); a column: one Column in columns(), reading the per-model row.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import common
import one_epoch
from digitlab.config import TrainConfig
from digitlab.data.batching import num_batches
from digitlab.data.dataset import Dataset, normalize
from digitlab.errors import ConfigError
from digitlab.models import MODELS, build, count_parameters
from digitlab.optim import OPTIMIZERS
from digitlab.perf import benchmark_report, compare, flops, matmul
from digitlab.perf.benchmark_report import Column, log, number
from digitlab.perf.machine import cpu_pressure, peak_rss_mb, physical_cores

DEFAULT_MODELS, PRECISIONS = ("lstm", "blstm", "cnn"), tuple(matmul.DTYPES)  # digitlab's CPU precisions
OPTIMIZER, LR, SEED = "adam", 0.001, 0  # the paper's Adam: digitlab.optim.adam (betas 0.9, 0.99)


def digitlab_config(args, model_name: str, precision: str) -> TrainConfig:
    """The settings of `digitlab train` that digitlab's side runs with (fit()'s own resolve_config fills the rest)."""
    config = TrainConfig(model=model_name, precision=precision, optimizer=OPTIMIZER, lr=LR, seed=SEED, progress="none")
    return config.replace(device="cpu", batch_size=args.batch_size, threads=args.threads, micro_batch=args.micro_batch)


def baseline(args, data: Dataset, model_name: str) -> dict:
    torch.manual_seed(SEED)  # the same weights as digitlab's side: build_session seeds, then builds
    model = build(model_name, data.image_shape, data.num_classes)
    optimizer = OPTIMIZERS[OPTIMIZER](model.parameters(), LR)
    return one_epoch.classic_epoch(model, optimizer, data, args.batch_size, args.warmup_steps, SEED)


def sides(args, data: Dataset, images: torch.Tensor, model_name: str) -> dict:
    """The timed sides of one model, in the order a repeat runs them: the baseline, then digitlab per precision."""
    timed = {"baseline": lambda: baseline(args, data, model_name)}
    for p in args.precisions:
        config = digitlab_config(args, model_name, p)
        timed[f"digitlab {p}"] = lambda config=config: one_epoch.trainer_epoch(config, data, images, args.warmup_steps)
    return timed


def measure_model(args, data: Dataset, images: torch.Tensor, model_name: str) -> dict:
    """Every side --repeats times, alternating; medians, ratios to the baseline, and the model's FLOP count."""

    def progress(side: str, run: dict) -> None:
        log(
            f"  {model_name:<6} {side:<13} repeat {run['repeat']}/{args.repeats}: {run['seconds']:.2f} s "
            f"(process CPU {run['cpu_seconds']:.2f} s; last loss {run['last_loss']:.4f})"
        )

    timed = sides(args, data, images, model_name)
    row = {"model": model_name} | compare.compare(timed, args.repeats, "baseline", args.threads, progress)
    model = build(model_name, data.image_shape, data.num_classes)
    row |= {"parameters": count_parameters(model), "flops": flops.flop_counts(model, data.image_shape, len(images))}
    if "digitlab fp32" in row["ratios"]:
        row["ratio"] = row["ratios"]["digitlab fp32"]  # digitlab fp32 / baseline, as before the bf16 side existed
    return row


def columns(precisions: list[str]) -> list[Column]:
    """model | baseline fp32 s | per precision: digitlab s, ratio | per precision: floor s, x floor."""
    cols = [Column("model", lambda row: row["model"], "left")]
    cols.append(Column("baseline fp32 s", lambda row: number(row["sides"]["baseline"]["seconds"])))
    for p in precisions:
        cols.append(Column(f"digitlab {p} s", lambda row, p=p: number(row["sides"][f"digitlab {p}"]["seconds"])))
        cols.append(Column(f"ratio ({p}/baseline fp32)", lambda row, p=p: number(row["ratios"][f"digitlab {p}"])))
    for p in precisions:
        cols.append(Column(f"{p} floor s", lambda row, p=p: number(row["floors"][p]["seconds"], 3)))
        cols.append(Column(f"{p} x floor", lambda row, p=p: number(row["floors"][p]["x_floor"], 1)))
    return cols


def header(result: dict) -> list[str]:
    s = result["settings"]
    passes = -(-s["batch_size"] // s["digitlab_micro_batch"])
    split = f"{passes} forward/backward passes per step, gradients summed; the baseline makes one"
    if passes == 1:
        split = "one forward/backward pass per step, as the baseline"
    bf16 = '; bf16 = its precision "bf16": torch.autocast(cpu, bfloat16) around the forward pass, fp32 weights, '
    bf16 = bf16 + "gradients and Adam" if "bf16" in s["precisions"] else ""
    medians = " (medians shown; sides alternate)" if s["repeats"] > 1 else ""
    return [
        "# One training epoch: digitlab trainer vs the classic DataLoader loop",
        "",
        *common.header_lines(result),
        f"- batch size {s['batch_size']}, {s['examples']} training examples ({s['steps']} steps per epoch), "
        f"{OPTIMIZER} lr {LR:g} betas (0.9, 0.99), seed {SEED}; baseline fp32, digitlab {', '.join(s['precisions'])}",
        f"- digitlab: training.loop.train_epoch with micro-batch {s['digitlab_micro_batch']} ({split}){bf16}",
        f"- {s['warmup_steps']} un-timed warm-up steps per side before each timed epoch; {s['repeats']} repeat(s) "
        f"per side{medians}",
        f"- data: {s['data_source']}; digitlab normalises it once into a tensor ({result['normalize_seconds']:.2f} s, "
        f"not in the table; the baseline does it per sample, inside its time)",
    ]


def gflop(count: int | None) -> str:
    return "n/a" if count is None else f"{count / 1e9:.0f}" if count >= 1e11 else f"{count / 1e9:.3g}"


def flop_text(row: dict) -> str:
    computed, full = row["flops"]["epoch_flops"], row["flops"]["epoch_flops_full"]
    extra = f" (what it computes; {gflop(full)} for the full bidirectional network)" if full != computed else ""
    return f"{row['model']} {gflop(computed)}{extra}"


def footer(result: dict) -> list[str]:
    s, rates = result["settings"], result["matmul"]
    size = f"{s['matmul_size']}x{s['matmul_size']}"
    return [
        f"- cpu pressure after:  {result['cpu_pressure_after']}",
        f"- peak RSS: {result['peak_rss_mb']:.0f} MB (whole process)",
        f"- training GFLOP per epoch ({s['examples']} examples; GEMMs and convolutions only: forward multiply-adds "
        f"x 2 FLOPs x 3 for forward + backward): " + ", ".join(flop_text(row) for row in result["results"]),
        f"- matmul GFLOP/s ({size} @ {size}, {s['threads']} threads, fastest of {s['matmul_repeats']} after a "
        f"warm-up; before / after the models): {matmul.before_after(rates['before'], rates['after'])}. The floors "
        "use the fastest of each precision: "
        + ", ".join(f"{p} {r:.1f} GFLOP/s" for p, r in rates["used_gflops"].items()),
        "- floor s = the epoch's GFLOP / that precision's matmul rate; x floor = digitlab's seconds / floor",
        "",
    ]


def matmul_rates(args, when: str) -> dict:
    rates = matmul.matmul_rates(args.matmul_size, args.matmul_repeats)
    log(f"  matmul {args.matmul_size}^3 ({when}): {matmul.describe(rates)}")
    return rates


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    info = benchmark_report.machine()
    data = common.load_data(args.data_dir, args.train_limit)
    started = time.perf_counter()
    images = normalize(data.train_images)
    normalize_seconds = time.perf_counter() - started
    # fit()'s micro-batch for these settings; raises ConfigError for a batch larger than the data
    micro_batch = one_epoch.trainer_config(digitlab_config(args, args.models[0], "fp32"), data).micro_batch
    steps = num_batches(len(images), args.batch_size)
    log(
        f"timing one epoch of {', '.join(args.models)} ({', '.join(args.precisions)}): {len(images)} examples, "
        f"batch {args.batch_size}, {args.threads} threads"
    )
    settings = {key: value for key, value in vars(args).items() if key != "json"}
    settings |= {"examples": len(images), "steps": steps, "optimizer": OPTIMIZER, "lr": LR, "seed": SEED}
    settings |= {"digitlab_micro_batch": micro_batch, "data_source": data.source, "data_verified": data.verified}
    result = {
        "date": benchmark_report.now(),
        "machine": info,
        "settings": settings,
        "normalize_seconds": normalize_seconds,
    }
    print(*header(result), sep="\n", flush=True)
    before = matmul_rates(args, "before the models")
    rows = [measure_model(args, data, images, name) for name in args.models]
    after = matmul_rates(args, "after the models")
    used = matmul.fastest(before, after)
    for row in rows:
        seconds = {p: row["sides"][f"digitlab {p}"]["seconds"] for p in args.precisions}
        row["floors"] = {p: matmul.floor(row["flops"]["epoch_flops"], used[p], seconds[p]) for p in args.precisions}
    result |= {"results": rows, "matmul": {"before": before, "after": after, "used_gflops": used}}
    result |= {"cpu_pressure_after": cpu_pressure(), "peak_rss_mb": round(peak_rss_mb(), 1)}
    result["peak_rss_note"] = "whole process; it includes digitlab's normalised copy of the training images"
    print(*footer(result), *benchmark_report.markdown_table(rows, columns(args.precisions)), "", sep="\n")
    shares = {
        f"{row['model']} {side}": share for row in rows for side, share in compare.stall_shares(row["sides"]).items()
    }
    print(*benchmark_report.stall_lines(shares), sep="\n", flush=True)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__)
    add, positive, count = parser.add_argument, common.positive, common.count
    add("--models", type=common.names(MODELS), default=",".join(DEFAULT_MODELS), help="keys of digitlab.models.MODELS")
    add("--batch-size", type=positive, default=500, help="examples per step (500: the paper's Table 4)")
    add("--threads", type=count, default=0, help="torch threads for both sides (0: the physical cores)")
    add("--precisions", type=common.names(PRECISIONS), default=",".join(PRECISIONS), help="digitlab's (baseline: fp32)")
    add("--repeats", type=positive, default=3, help="timed epochs per side; above 1 the sides alternate, medians shown")
    add("--train-limit", type=count, default=0, help="use the first N training examples (0: all)")
    common.add_data_dir(parser)
    add("--warmup-steps", type=count, default=3, help="un-timed steps per side before each timed epoch")
    add("--micro-batch", type=count, default=0, help="digitlab's examples per forward/backward pass (0: as fit())")
    add("--matmul-size", type=positive, default=2048, help="side of the square matmul timed for the floor")
    add("--matmul-repeats", type=positive, default=5, help="timed matmuls per dtype, before and after the models")
    add("--json", default=None, metavar="PATH", help="also write the results here as JSON")
    args = parser.parse_args(argv)
    args.threads = args.threads or physical_cores()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except ConfigError as error:
        raise SystemExit(f"epoch_time.py: {error}") from None
    if args.json:
        common.save_json(args.json, result)
        log(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
