"""The GPU record of issue 21 (part 3): time to 99% MNIST test accuracy with a small fast CNN, and the paper LSTM's
seconds per epoch, on one GPU with the launch overhead removed.

    bash benchmarks/gpu_speedrun.sh                           # on CUDA, all stages, under 5 minutes on one H200
    python benchmarks/gpu_speedrun.py --device cpu --quick    # a rehearsal on the CPU (its numbers mean nothing)

Stages (--stages): select (a grid of batch size, epochs and peak lr, each on --select-seeds seeds, trained on the
training set less a validation split and scored on that split: the fastest whose every seed reaches --target),
record (the chosen settings trained on the whole training set, --seeds other seeds, scored on the test set), levers
(the record's settings, one seed, each lever taken away in turn), lstm (digitlab's paper LSTM, batch 500, seconds per
epoch in bf16 and fp32). How: the data lie on the device as normalised tensors, a batch is an index slice of them;
one training step (gather, forward, backward, fused Adam with its one-cycle lr read from a device tensor) is captured
once as a CUDA graph and replayed (--launch graph). The clock runs from the epoch's shuffle to torch.cuda.synchronize()
after the last step; building, warm-up and capture (reported apart as set-up) and evaluation are outside it.
Writes benchmarks/results/gpu_speedrun-<date>.md and .json (on the CPU: gpu_speedrun-cpu-rehearsal-<date>), or --stem.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import common
import speedrun_report
from digitlab.data.dataset import normalize, prepare
from digitlab.models import build, count_parameters
from digitlab.perf.benchmark_report import log, machine
from speedrun_trainer import SpeedNet, Trainer, one_cycle

STAGES = ("select", "record", "levers", "lstm")
LEVERS = {  # name -> (launch, precision, channels-last): all the levers, then each taken away
    "all levers (graph, bf16, channels-last)": ("graph", "bf16", True),
    "fp32 instead of bf16": ("graph", "fp32", True),
    "NCHW instead of channels-last": ("graph", "bf16", False),
    "eager launches (no CUDA graph)": ("eager", "bf16", True),
    "none (eager, fp32, NCHW)": ("eager", "fp32", False),
}


def seeded(make):
    """make() with torch seeded by `seed` first: seed -> a fresh model, on the CPU."""

    def fresh(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return make()

    return fresh


SPEEDNET, LSTM = seeded(SpeedNet), seeded(lambda: build("lstm", (28, 28), 10))


def on_device(images: torch.Tensor, labels: torch.Tensor, device: torch.device, channels: bool) -> tuple:
    """uint8 images normalised, as (N, 1, H, W) in channels-last for the CNN (`channels`) or (N, H, W), on `device`."""
    x = normalize(images).to(device)
    return (x.unsqueeze(1).contiguous(memory_format=torch.channels_last) if channels else x), labels.to(device)


def steps_per_epoch(train: tuple, batch: int) -> int:
    """Full batches in an epoch of `train` (images, labels); SystemExit where there is none."""
    if batch > len(train[0]):
        raise SystemExit(f"gpu_speedrun: batch {batch} is larger than the training set ({len(train[0])} examples); "
                         f"give smaller --batch-sizes or more data (--train-limit 0: all)")  # fmt: skip
    return len(train[0]) // batch


def speednet_trainer(args, train, batch: int, max_steps: int, **override) -> Trainer:
    """A SpeedNet trainer with the command line's launch, precision, channels-last and compile mode, or `override`'s."""
    given = {"launch": args.launch, "precision": args.precision, "channels_last": args.channels_last}
    given |= {"compile_mode": args.compile_mode} | override
    return Trainer(SPEEDNET, *train, batch, max_steps, warmup=args.warmup, smoothing=args.smoothing, **given)


def select(args, train, val) -> dict:
    """Every (batch, epochs, lr) of the grid on --select-seeds seeds, scored on validation; the fastest whose every
    seed reaches the target is chosen (none: the most accurate, and `reached` says so)."""
    rows = []
    for batch in args.batch_sizes:
        per_epoch = steps_per_epoch(train, batch)
        trainer = speednet_trainer(args, train, batch, round(max(args.epochs_grid) * per_epoch))
        for epochs in args.epochs_grid:
            for lr in args.lrs:
                steps, runs = round(epochs * per_epoch), []
                for seed in range(args.select_seeds):
                    trainer.reset(seed, one_cycle(steps, lr))
                    runs.append({"seed": seed, "seconds": trainer.train(steps), "val_acc": trainer.accuracy(*val)})
                accs = [run["val_acc"] for run in runs]
                rows.append({"batch_size": batch, "epochs": epochs, "lr": lr, "steps": steps, "runs": runs,
                             "seconds": statistics.mean(run["seconds"] for run in runs), "min_val_acc": min(accs),
                             "mean_val_acc": statistics.mean(accs), "setup_s": trainer.setup_s,
                             "ran_as": trainer.ran_as})  # fmt: skip
                log(
                    f"select: batch {batch}, {epochs} epochs, lr {lr}: val {min(accs):.4f} (min), "
                    f"{rows[-1]['seconds']:.3f} s"
                )
    best, reached = choose(rows, args.target)
    best["chosen"] = True
    return {"rows": rows, "reached": reached, "chosen": {key: best[key] for key in ("batch_size", "epochs", "lr")}}


def choose(rows: list[dict], target: float) -> tuple[dict, bool]:
    """The fastest row whose every seed reached `target` on validation, and True; else the most accurate, and False."""
    reaching = [row for row in rows if row["min_val_acc"] >= target]
    if reaching:
        return min(reaching, key=lambda row: row["seconds"]), True
    return max(rows, key=lambda row: row["mean_val_acc"]), False


def record(args, settings: dict, train, test, seeds, **override) -> dict:
    """The settings trained on `train` once per seed (seeds apart from the selection's), scored on the test set."""
    batch = settings["batch_size"]
    steps = round(settings["epochs"] * steps_per_epoch(train, batch))
    trainer, runs = speednet_trainer(args, train, batch, steps, **override), []
    for seed in seeds:
        trainer.reset(seed, one_cycle(steps, settings["lr"]))
        seconds = trainer.train(steps)
        start = time.perf_counter()
        acc = trainer.accuracy(*test)
        runs.append({"seed": seed, "seconds": seconds, "test_acc": acc, "reached": acc >= args.target,
                     "eval_s": time.perf_counter() - start})  # fmt: skip
        log(f"record: seed {seed}: {seconds:.3f} s, test {acc:.4f}")
    return {"settings": settings, "steps": steps, "examples": [len(train[0]), len(test[0])],
            "setup_s": trainer.setup_s, "ran_as": trainer.ran_as, "runs": runs,
            "mean_seconds": statistics.mean(run["seconds"] for run in runs),
            "reached": sum(run["reached"] for run in runs),
            "mean_test_acc": statistics.mean(run["test_acc"] for run in runs)}  # fmt: skip


def levers(args, settings: dict, train, test) -> list[dict]:
    """The record's settings on its first seed with each lever taken away in turn (LEVERS; --lever-compile adds one)."""
    variants = dict(LEVERS)
    if args.lever_compile:
        variants[f"torch.compile ({args.lever_compile}) instead of a CUDA graph"] = ("compile", "bf16", True)
    rows = []
    for name, (launch, precision, channels_last) in variants.items():
        lever = {"launch": launch, "precision": precision, "channels_last": channels_last}
        row = record(args, settings, train, test, [1000], compile_mode=args.lever_compile or args.compile_mode, **lever)
        rows.append({"lever": name, **lever, **row})
    return rows


def lstm(args, train, test) -> list[dict]:
    """digitlab's paper LSTM at batch 500, Adam at lr 0.001: seconds per epoch (--lstm-epochs, median), per precision,
    with --launch and, beside it, eager launches as digitlab's trainer makes them."""
    per_epoch, rows = steps_per_epoch(train, 500), []
    for precision in ("bf16", "fp32"):
        for launch in dict.fromkeys((args.launch, "eager")):
            steps = per_epoch * args.lstm_epochs
            trainer = Trainer(LSTM, *train, 500, steps, precision, launch, warmup=args.warmup,
                              compile_mode=args.compile_mode)  # fmt: skip
            trainer.reset(0, torch.full((steps,), 0.001))
            seconds = [trainer.train(per_epoch) for _ in range(args.lstm_epochs)]
            rows.append({"precision": precision, "launch": launch, "examples": len(train[0]),
                         "ran_as": trainer.ran_as, "setup_s": trainer.setup_s,
                         "epoch_seconds": seconds, "seconds": statistics.median(seconds),
                         "test_acc": trainer.accuracy(*test)})  # fmt: skip
            log(f"lstm {precision} {launch}: {rows[-1]['seconds']:.3f} s per epoch ({trainer.ran_as})")
    return rows


QUICK = {  # --quick: every stage on a tiny subset, one seed, one grid point (a rehearsal of the script)
    "train_limit": 1200, "test_limit": 500, "val_size": 200, "batch_sizes": [256], "epochs_grid": [1.0],
    "lrs": [0.006], "select_seeds": 1, "seeds": 1, "lstm_epochs": 1, "warmup": 1,
}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__)
    floats = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    ints = lambda text: [common.positive(x) for x in text.split(",")]  # noqa: E731
    add = parser.add_argument
    add("--device", default="cuda", help="cuda, or cpu for a rehearsal")
    add("--quick", action="store_true", help="tiny subsets, one seed, one grid point: a rehearsal in seconds")
    add("--stages", type=common.names(STAGES), default=list(STAGES), help="comma-separated stages to run")
    add("--target", type=float, default=0.99, help="the accuracy to reach")
    add("--batch-sizes", type=ints, default=[256, 512], help="select: batch sizes to try")
    add("--epochs-grid", type=floats, default=[1.0, 1.5, 2.0, 3.0], help="select: epochs to try (fractions allowed)")
    add("--lrs", type=floats, default=[0.003, 0.006, 0.012], help="select: one-cycle peak lrs to try")
    add("--select-seeds", type=common.positive, default=3, help="select: seeds per grid point")
    add("--val-size", type=common.positive, default=10_000, help="select: training examples held out to score on")
    add("--seeds", type=common.positive, default=10, help="record: seeds (1000, 1001, ...)")
    add("--batch-size", type=common.positive, default=512, help="record: batch size when select is not run")
    add("--epochs", type=float, default=2.0, help="record: epochs when select is not run")
    add("--lr", type=float, default=0.006, help="record: peak lr when select is not run")
    add("--launch", choices=("graph", "compile", "eager"), default="graph", help="how steps are launched")
    add("--compile-mode", default="max-autotune-no-cudagraphs", help="torch.compile's mode for --launch compile")
    add("--lever-compile", default="", help="levers: add torch.compile with this mode (minutes of compiling)")
    add("--precision", choices=("bf16", "fp32"), default="bf16", help="the CNN's precision (bf16: autocast)")
    add("--channels-last", action=argparse.BooleanOptionalAction, default=True, help="the CNN in channels-last")
    add("--smoothing", type=float, default=0.0, help="label smoothing of the CNN's loss")
    add("--lstm-epochs", type=common.positive, default=3, help="lstm: timed epochs per row (median reported)")
    add("--warmup", type=common.positive, default=3, help="untimed steps before capture or timing")
    add("--train-limit", type=common.count, default=0, help="first N training examples only (0: all)")
    add("--test-limit", type=common.count, default=0, help="first N test examples only (0: all)")
    add("--stem", default=None, help="write STEM.md and STEM.json (default: benchmarks/results/gpu_speedrun-<date>)")
    common.add_data_dir(parser)
    args = parser.parse_args(argv)
    if args.quick:  # the quick values, except where the command line gave its own
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(
            "--device cuda: torch sees no CUDA GPU here; run on a CUDA machine, or rehearse: --device cpu --quick"
        )
    return args


def device_record(device: torch.device) -> dict:
    """What the GPU side of machine() leaves out: the GPU, CUDA, cuDNN and the TF32 switches."""
    cuda = device.type == "cuda"
    return {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu (a rehearsal: no GPU)",
        "capability": ".".join(map(str, torch.cuda.get_device_capability(device))) if cuda else None,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }  # fmt: skip


def save(stem: Path, result: dict, rehearsal: bool, final: bool = False) -> None:
    """STEM.json and STEM.md as far as the stages have gone; the last call also prints the report."""
    common.save_json(f"{stem}.json", result)
    Path(f"{stem}.md").write_text(speedrun_report.text(result, rehearsal))
    if final:
        print(Path(f"{stem}.md").read_text())
        log(f"gpu_speedrun: wrote {stem}.md")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # algorithms picked in the warm-up, before any clock
    info = machine() | device_record(device)
    full = common.load_data(args.data_dir, train_limit=args.train_limit)
    test_images, test_labels = full.test_images, full.test_labels
    if args.test_limit:
        test_images, test_labels = test_images[: args.test_limit], test_labels[: args.test_limit]
    result = common.results(info, settings=vars(args) | {"speednet_parameters": count_parameters(SpeedNet())})
    rehearsal = device.type != "cuda"
    default = f"gpu_speedrun-{'cpu-rehearsal-' if rehearsal else ''}{time.strftime('%Y%m%d-%H%M')}"
    stem = Path(args.stem) if args.stem else common.RESULTS / default
    settings = {"batch_size": args.batch_size, "epochs": args.epochs, "lr": args.lr, "given": True}
    cnn = lambda images, labels: on_device(images, labels, device, channels=True)  # noqa: E731
    if "select" in args.stages:
        split = prepare(full, val_size=args.val_size, seed=0)
        train, val = cnn(split.train_images, split.train_labels), cnn(split.val_images, split.val_labels)
        result["select"] = select(args, train, val)
        settings = result["select"]["chosen"] | {"given": False}
        save(stem, result, rehearsal)  # after each stage: a stage cut off by the time limit leaves those before
    train, test = cnn(full.train_images, full.train_labels), cnn(test_images, test_labels)
    if "record" in args.stages:
        result["record"] = record(args, settings, train, test, range(1000, 1000 + args.seeds))
        save(stem, result, rehearsal)
    if "levers" in args.stages:
        result["levers"] = levers(args, settings, train, test)
        save(stem, result, rehearsal)
    if "lstm" in args.stages:
        flat = lambda images, labels: on_device(images, labels, device, channels=False)  # noqa: E731
        result["lstm"] = lstm(args, flat(full.train_images, full.train_labels), flat(test_images, test_labels))
    save(stem, result, rehearsal, final=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
