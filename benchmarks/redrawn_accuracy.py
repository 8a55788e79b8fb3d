#!/usr/bin/env python
"""How well `digitlab predict` reads digits as people give them: MNIST test digits re-drawn as image files.

    .venv/bin/python benchmarks/redrawn_accuracy.py [--images 2000] [--seed 0] [--model RUN_DIR|FILE.onnx]
                                                    [--data-dir DIR] [--out benchmarks/results]

Each of the first --images MNIST test digits (of --data-dir, else the shared copy, else digitlab's fetch
chain) is re-drawn as a person's picture of it would look (redraw): upscaled onto a paper canvas of a random
size (60-600 px a side), at a random size and position, its strokes made thinner or thicker (a grey erosion
or dilation of up to 0.4 or 0.8 MNIST pixels a side), as dark ink of a random darkness on light paper of a
random level, with a slight shading across the page and paper noise, and saved as a PNG or a JPEG (quality
70-95). The files then go the way `digitlab predict MODEL FILES` takes them (digitlab.inference.recognise.
predict_files: decode, to_mnist, one model in batches); the same digits fed straight to the model as 28x28
images give the accuracy without the round trip, the ceiling of what preprocessing can reach.

The model is the one shipped with digitlab (src/digitlab/default_model) unless --model names another.
Writes benchmarks/results/redrawn_accuracy.md and .json; the Markdown also goes to stdout, progress to stderr.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

import common
from common import percent
from digitlab.inference.classifier import open_classifier
from digitlab.inference.recognise import predict_files
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import log

CANVAS = (60, 600)  # pixels a side of the paper, each side drawn independently
HEIGHT_SHARE = (0.25, 0.9)  # the digit's ink height as a share of the canvas height
STROKE_CHANGE = (-0.4, 0.8)  # MNIST pixels taken off (negative) or added to each side of a stroke
PAPER = (0.75, 1.0)  # paper level, 0 black .. 1 white
INK = (0.0, 0.35)  # ink level
SHADING = 0.06  # at most this much darker from one side of the page to the other
NOISE = (0.0, 0.04)  # standard deviation of the paper noise
JPEG_QUALITY = (70, 95)
TARGET = 0.97  # the acceptance figure for the re-drawn digits


def redraw(digit: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """An MNIST digit (uint8 28x28, light on black) as a photo or a scan of it might look: a greyscale image of
    dark ink on light paper, and how it was drawn (canvas, ink height, stroke change, ...)."""
    width, height = (int(side) for side in rng.integers(CANVAS[0], CANVAS[1] + 1, size=2))
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    ink = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255
    scale = rng.uniform(*HEIGHT_SHARE) * height / ink.shape[0]
    scale = min(scale, 0.95 * width / ink.shape[1])  # a wide digit on a narrow page: as large as fits
    change = float(rng.uniform(*STROKE_CHANGE))
    margin = int(np.ceil(max(change, 0) * scale)) + 2
    big = np.asarray(
        Image.fromarray(np.pad(ink, 1), mode="F").resize(
            (round((ink.shape[1] + 2) * scale), round((ink.shape[0] + 2) * scale)), Image.Resampling.BICUBIC
        )
    )
    big = np.clip(np.pad(big, margin), 0, 1)
    radius = abs(change) * scale
    if radius >= 0.5:
        disc = _disc(radius)
        big = ndimage.grey_dilation(big, footprint=disc) if change > 0 else ndimage.grey_erosion(big, footprint=disc)
    rows, cols = np.flatnonzero((big > 0.02).any(axis=1)), np.flatnonzero((big > 0.02).any(axis=0))
    big = big[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if big.shape[0] > height or big.shape[1] > width:  # dilation grew it past the page: shrink to fit
        fit = min(height / big.shape[0], width / big.shape[1])
        size = (max(1, int(big.shape[1] * fit)), max(1, int(big.shape[0] * fit)))
        big = np.clip(np.asarray(Image.fromarray(big, mode="F").resize(size, Image.Resampling.BOX)), 0, 1)
    coverage = np.zeros((height, width), dtype=np.float32)
    top = int(rng.integers(0, height - big.shape[0] + 1))
    left = int(rng.integers(0, width - big.shape[1] + 1))
    coverage[top : top + big.shape[0], left : left + big.shape[1]] = big
    paper, ink_level = rng.uniform(*PAPER), rng.uniform(*INK)
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width]
    shading = SHADING * rng.uniform() * ((x / width - 0.5) * np.cos(angle) + (y / height - 0.5) * np.sin(angle))
    page = paper - shading - (paper - ink_level) * coverage + rng.normal(0, rng.uniform(*NOISE), (height, width))
    image = Image.fromarray(np.round(np.clip(page, 0, 1) * 255).astype(np.uint8), mode="L")
    drawn = {"canvas": [width, height], "ink_height": int(big.shape[0]), "stroke_change": round(change, 3)}
    return image, drawn


def _disc(radius: float) -> np.ndarray:
    reach = int(np.ceil(radius))
    y, x = np.ogrid[-reach : reach + 1, -reach : reach + 1]
    return x * x + y * y <= radius * radius


def write_set(digits: np.ndarray, folder: Path, seed: int) -> tuple[list[Path], list[dict]]:
    """Each digit re-drawn and saved into `folder` as a PNG or a JPEG: the paths and how each was drawn."""
    rng = np.random.default_rng(seed)
    paths, drawn = [], []
    for number, digit in enumerate(digits):
        image, how = redraw(digit, rng)
        if rng.random() < 0.5:
            path = folder / f"{number:05d}.png"
            image.save(path)
            how["format"] = "PNG"
        else:
            path = folder / f"{number:05d}.jpg"
            image.save(path, quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
            how["format"] = "JPEG"
        paths.append(path)
        drawn.append(how)
    return paths, drawn


def groups(drawn: list[dict], right: np.ndarray) -> list[dict]:
    """Accuracy over subsets of the re-drawn digits: by file format, stroke change and canvas size."""
    change = np.array([how["stroke_change"] for how in drawn])
    side = np.array([min(how["canvas"]) for how in drawn])
    fmt = np.array([how["format"] for how in drawn])
    subsets = {
        "PNG files": fmt == "PNG",
        "JPEG files": fmt == "JPEG",
        "thinner strokes (eroded)": change < -0.1,
        "MNIST's strokes (within 0.1 px)": np.abs(change) <= 0.1,
        "thicker strokes (dilated)": change > 0.1,
        "small canvas (shorter side < 200 px)": side < 200,
        "large canvas (shorter side >= 200 px)": side >= 200,
    }
    return [
        {"subset": name, "images": int(chosen.sum()), "accuracy": float(right[chosen].mean()) if chosen.any() else None}
        for name, chosen in subsets.items()
    ]


def markdown(result: dict) -> str:
    setup, overall = result["setup"], result["overall"]
    lines = [
        "# Re-drawn MNIST test digits through `digitlab predict`",
        "",
        f"- date: {result['date']}",
        f"- command: `{result['command']}`",
        *benchmark_report.machine_lines(result["machine"]),
        f"- model: {setup['model']}",
        f"- images: the first {setup['images']} MNIST test digits ({setup['image_source']}), re-drawn with seed "
        f"{setup['seed']}: canvas {CANVAS[0]}-{CANVAS[1]} px a side, ink height {HEIGHT_SHARE[0]:.0%}-"
        f"{HEIGHT_SHARE[1]:.0%} of the canvas, strokes {STROKE_CHANGE[0]:+} to {STROKE_CHANGE[1]:+} MNIST px a "
        f"side, dark ink on light paper with shading and noise, PNG or JPEG",
        "",
        "| input | accuracy % | images |",
        "|---|---|---|",
        f"| MNIST's own 28x28 images, straight to the model | {100 * overall['direct']:.2f} | {setup['images']} |",
        f"| re-drawn image files through `digitlab predict` | {100 * overall['redrawn']:.2f} | {setup['images']} |",
        "",
        f"Re-drawn accuracy {100 * overall['redrawn']:.2f}% against the target of >= {100 * TARGET:.0f}%: "
        f"{'met' if overall['redrawn'] >= TARGET else 'NOT met'}. Files refused: {overall['refused']}. "
        f"Decode and preprocessing took {1000 * overall['seconds_per_image']:.1f} ms per image (with the model run).",
        "",
        "| re-drawn subset | accuracy % | images |",
        "|---|---|---|",
        *(f"| {row['subset']} | {percent(row['accuracy'])} | {row['images']} |" for row in result["subsets"]),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--images", type=common.positive, default=2000, help="MNIST test digits re-drawn")
    parser.add_argument("--seed", type=common.count, default=0, help="seed of the re-drawing")
    common.add_model(parser)
    common.add_out(parser)
    common.add_data_dir(parser)
    args = parser.parse_args(argv)

    dataset = common.load_data(args.data_dir)
    digits = dataset.test_images[: args.images].numpy()
    labels = dataset.test_labels[: args.images].numpy().astype(int)
    classifier = open_classifier(args.model)
    direct = classifier.probabilities(digits).argmax(axis=1) == labels
    log(f"straight 28x28: {direct.mean():.2%} of {len(labels)}")
    with tempfile.TemporaryDirectory(prefix="digitlab-redrawn-") as folder:
        paths, drawn = write_set(digits, Path(folder), args.seed)
        log(f"re-drew {len(paths)} digits into {folder}")
        start = time.perf_counter()
        answers = predict_files(classifier, paths)
        seconds = time.perf_counter() - start
    guessed = np.array([answer.get("digit", -1) for answer in answers])
    right = guessed == labels
    log(f"re-drawn through predict: {right.mean():.2%} ({seconds:.1f} s)")
    overall = {
        "direct": float(direct.mean()),
        "redrawn": float(right.mean()),
        "refused": sum("error" in answer for answer in answers),
        "seconds_per_image": seconds / len(paths),
        "target": TARGET,
    }
    setup = {
        "images": len(labels), "image_source": dataset.source, "seed": args.seed, "model": classifier.source,
        "canvas": CANVAS, "height_share": HEIGHT_SHARE, "stroke_change": STROKE_CHANGE, "paper": PAPER, "ink": INK,
        "shading": SHADING, "noise": NOISE, "jpeg_quality": JPEG_QUALITY,
    }  # fmt: skip
    wrong = [
        {"index": int(i), "label": int(labels[i]), "guess": int(guessed[i]), **drawn[i]} for i in np.flatnonzero(~right)
    ]
    result = common.results(benchmark_report.machine(), setup=setup, overall=overall, subsets=groups(drawn, right))
    result["wrong"] = wrong
    stem = Path(args.out) / "redrawn_accuracy"
    common.save_report(stem, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
