#!/usr/bin/env python
"""How many images per second the CNNs classify, through PyTorch and through ONNX Runtime, side by side.

    .venv/bin/python benchmarks/predict_speed.py [--models cnn,vgg] [--images 1000] [--batch-sizes 1,1000]
                                                 [--rounds 5] [--data-dir DIR] [--out benchmarks/results]

Each model is timed as `digitlab predict` runs it, decode excluded: uint8 images (N, 28, 28) in, class
probabilities out. PyTorch: digitlab.inference.classifier.probabilities (normalisation, forward pass, softmax)
with the loaded run's model; ONNX Runtime: digitlab.inference.classifier.OnnxClassifier.probabilities of
the same run exported by `digitlab export` (normalisation in the graph, softmax in NumPy), on its CPU
provider with its default threads. The images are the first --images MNIST test images (of --data-dir,
else the shared copy, else the fetch chain). At each batch size all the images are classified in batches
of that size; after one un-timed pass of each, --rounds rounds alternate the two engines, and the median
round gives images/s.

vgg is the model shipped with digitlab (src/digitlab/default_model, the cnn-best recipe). cnn is the
classic 2-conv CNN at its default sizes, trained here for one epoch on 1,000 training images only to
have a run to export: its speed does not depend on what its weights learned.

Writes benchmarks/results/predict_speed.md and .json; the Markdown also goes to stdout, progress to stderr.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import common
import digitlab
from digitlab.config import TrainConfig
from digitlab.inference.classifier import OnnxClassifier, probabilities
from digitlab.inference.export import export_onnx
from digitlab.inference.load import load_model
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import Column, log
from digitlab.perf.machine import cpu_pressure
from digitlab.perf.timer import Timer
from digitlab.training.fit import fit

TARGET_IMAGES_PER_S = 2000  # batch predict of the CNN, decode excluded, on a 2-core machine (issue 11)
SHIPPED = Path(digitlab.__file__).resolve().parent / "default_model"
MODELS = ("cnn", "vgg")


def run_of(name: str, data_dir: str | None, folder: Path) -> Path:
    """A finished run of `name`: the shipped model for vgg; for cnn, one trained briefly into `folder`."""
    if name == "vgg":
        return SHIPPED
    config = TrainConfig(
        model=name, epochs=1, train_limit=1000, test_limit=1000, batch_size=100, data_dir=data_dir,
        run_dir=str(folder / name),
        progress="none", device="cpu", test_eval="final",
    )  # fmt: skip
    return fit(config, log=lambda *args, **kwargs: None)


def classify_all(classify, images: np.ndarray, batch: int) -> None:
    for start in range(0, len(images), batch):
        classify(images[start : start + batch])


def measure(engines: dict, images: np.ndarray, batch: int, rounds: int) -> list[dict]:
    """One row per engine: the seconds of each round of classifying all `images` in batches of `batch`."""
    for classify in engines.values():
        classify_all(classify, images, batch)  # un-timed: allocations, ONNX Runtime's first-run set-up
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    stalls: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, classify in engines.items():  # alternating, so that a busy spell hits both alike
            with Timer() as timer:
                classify_all(classify, images, batch)
            seconds[name].append(timer.seconds)
            if timer.stall_share is not None:
                stalls[name].append(timer.stall_share)
    rows, calls = [], -(-len(images) // batch)
    for name in engines:
        median = statistics.median(seconds[name])
        rows.append({
            "engine": name, "batch": batch, "images": len(images), "rounds": rounds, "seconds": seconds[name],
            "median_s": median, "images_per_s": len(images) / median,
            "best_images_per_s": len(images) / min(seconds[name]), "ms_per_batch": median / calls * 1000,
            "cpu_stall_percent": 100 * max(stalls[name]) if stalls[name] else None,
        })  # fmt: skip
    return rows


COLUMNS = [
    Column("model", lambda row: row["model"], "left"),
    Column("engine", lambda row: row["engine"], "left"),
    Column("batch", lambda row: str(row["batch"])),
    Column("images/s (median)", lambda row: f"{row['images_per_s']:,.0f}"),
    Column("best", lambda row: f"{row['best_images_per_s']:,.0f}"),
    Column("ms per batch", lambda row: f"{row['ms_per_batch']:.3f}"),
    Column("vs torch", lambda row: f"{row['vs_torch']:.2f}x"),
    Column("max CPU stall %", lambda row: benchmark_report.number(row["cpu_stall_percent"], 0)),
]


def target_line(rows: list[dict]) -> str:
    batched = [row for row in rows if row["model"] == "cnn" and row["batch"] > 1]
    if not batched:
        return f"- target >= {TARGET_IMAGES_PER_S:,} images/s for the cnn at a batch > 1: not measured"
    best = max(batched, key=lambda row: row["images_per_s"])
    met = "met" if best["images_per_s"] >= TARGET_IMAGES_PER_S else "NOT met"
    each = ", ".join(f"{row['engine']} {row['images_per_s']:,.0f}" for row in batched)
    return f"- target >= {TARGET_IMAGES_PER_S:,} images/s for the cnn, batch predict, decode excluded: {met} ({each})"


def markdown(result: dict) -> str:
    setup = result["setup"]
    lines = [
        "# Predict speed: PyTorch and ONNX Runtime, decode excluded",
        "",
        *common.header_lines(result),
        f"- onnxruntime {setup['onnxruntime']} (CPUExecutionProvider, default threads), opset {setup['opset']}",
        f"- images: {setup['images']} 28x28 uint8 ({setup['image_source']}) -> class probabilities; "
        f"{setup['rounds']} timed rounds per batch size after one un-timed pass, engines alternating",
        f"- models: {'; '.join(f'{name}: {text}' for name, text in setup['models'].items())}",
        f"- command: `{result['command']}`",
        "",
        *benchmark_report.markdown_table(result["rows"], COLUMNS),
        "",
        target_line(result["rows"]),
        "- images/s: images over the median round's wall seconds (best: over the fastest round); "
        "vs torch: images/s over PyTorch's at the same model and batch; max CPU stall %: the largest share of a "
        "round in which some task waited for a CPU (/proc/pressure/cpu)",
        f"- cpu pressure after: {result['cpu_pressure_after']}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--models", type=common.names(MODELS), default=list(MODELS), help="cnn, vgg or both")
    parser.add_argument("--images", type=common.positive, default=1000, help="test images classified per round")
    parser.add_argument("--batch-sizes", default="1,1000", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=common.positive, default=5, help="timed rounds per batch size")
    common.add_out(parser)
    common.add_data_dir(parser)
    args = parser.parse_args(argv)
    batches = [common.positive(value) for value in args.batch_sizes.split(",")]

    import onnxruntime

    data_dir = common.data_dir(args.data_dir)
    dataset = common.load_data(args.data_dir)
    images = dataset.test_images[: args.images].numpy()
    info = benchmark_report.machine()
    rows, described, opset = [], {}, None
    with tempfile.TemporaryDirectory(prefix="digitlab-predict-speed-") as folder:
        for name in args.models:
            run = run_of(name, data_dir, Path(folder))
            exported = export_onnx(run, Path(folder) / f"{name}.onnx")
            opset = exported["opset"]
            model, _ = load_model(run)
            classifier = OnnxClassifier(exported["path"])
            size = sum(p.numel() for p in model.parameters())
            described[name] = (
                f"{'the shipped model' if run == SHIPPED else 'trained here briefly'}, {size:,} parameters, "
                f"ONNX {exported['bytes'] / 1e6:.1f} MB, max logit difference {exported['max_difference']:.2g}"
            )
            engines = {
                "torch": lambda batch, model=model: probabilities(model, torch.from_numpy(batch)),
                "onnxruntime": classifier.probabilities,
            }
            for batch in batches:
                measured = measure(engines, images, batch, args.rounds)
                torch_speed = measured[0]["images_per_s"]
                for row in measured:
                    rows.append({"model": name, **row, "vs_torch": row["images_per_s"] / torch_speed})
                    log(f"{name} {row['engine']} batch {batch}: {row['images_per_s']:,.0f} images/s")
    setup = {
        "images": len(images), "image_source": dataset.source, "rounds": args.rounds, "batch_sizes": batches,
        "models": described, "opset": opset, "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    result = common.results(info, setup=setup, rows=rows, target_images_per_s=TARGET_IMAGES_PER_S)
    result["cpu_pressure_after"] = cpu_pressure()
    stem = Path(args.out) / "predict_speed"
    common.save_report(stem, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
