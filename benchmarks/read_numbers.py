#!/usr/bin/env python
"""How well `digitlab read` reads numbers: lines of 2-8 MNIST digits with wide, narrow or touching spacing,
rendered as phone photos, against the same digits read one at a time by `digitlab predict`'s path.

    .venv/bin/python benchmarks/read_numbers.py [--count 300] [--split test|train] [--seed 0]
                                                [--model RUN_DIR|FILE.onnx] [--data-dir DIR] [--out DIR]

Each number is composed of 2-8 random digits of the split (--split test: MNIST's test digits, which no model
trained on; --split train: training digits, the only ones segmentation was tuned on): each digit cropped to
its ink, scaled to the number's digit height (28-90 px) with a size jitter of +-15%, slanted (a shear of the
number's slant +-0.05, the slant within +-0.3), its baseline moved by up to +-8% of the height, then placed
right of its left neighbour so that the nearest ink of the two is, per spacing class, 0.3-0.8 H apart (wide),
2 px-0.15 H apart (narrow), or touching: adjacent or overlapping by 1-3 px. The ink is laid out on paper and
rendered as a photo (digitlab.data.photo.as_photo: light, grain, pen, blur, noise, JPEG). Each digit is
also rendered alone, the same way, and read by predict's path (inference.recognise.recognise_images).

Predict's "several digits" verdict is counted on the single digits: each one it gives there is a false one.

Whole-number accuracy: the string read equals the truth. Per-digit accuracy: the truth's digits less the edit
distance between the string read and the truth, over the truth's digits (a missed or extra digit costs one).
The best guess counts, "not a digit" verdicts aside (they are counted separately). Writes
benchmarks/results/read_numbers[-train].md and .json (--out); progress goes to stderr.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

import common
from digitlab.data.photo import as_photo
from digitlab.inference.classifier import open_classifier
from digitlab.inference.decode import ImageError
from digitlab.inference.read import read_images
from digitlab.inference.recognise import recognise_images
from digitlab.perf.benchmark_report import log, machine

CLASSES = ("wide", "narrow", "touching")
DIGITS = (2, 8)
HEIGHT = (28, 90)  # px: the number's digit height
SIZE_JITTER = 0.15
SLANT, SLANT_JITTER = 0.3, 0.05
BASELINE = 0.08
TARGETS = {"wide": 0.95, "narrow": 0.95, "touching": 0.85}


def shaped(digit: np.ndarray, height: float, slant: float) -> np.ndarray:
    """An MNIST digit (uint8 28x28) as ink 0..1, cropped, scaled to `height` px tall, sheared by `slant`."""
    ink = digit.astype(np.float32) / 255
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.1), np.flatnonzero(ink.max(axis=0) > 0.1)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = height / ink.shape[0]
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    big = np.asarray(Image.fromarray(ink, mode="F").resize(size, Image.Resampling.BILINEAR))
    h, w = big.shape
    reach = int(np.ceil(abs(slant) * h))
    sheared = np.zeros((h, w + reach + 1), dtype=np.float32)
    for r in range(h):  # top rows shift right for a forward slant
        shift = slant * (h - 1 - r) if slant >= 0 else reach + slant * (h - 1 - r)
        whole = int(np.floor(shift))
        part = shift - whole
        sheared[r, whole : whole + w] += (1 - part) * big[r]
        sheared[r, whole + 1 : whole + 1 + w] += part * big[r]
    return np.clip(sheared, 0, 1)


def compose(digits: list[np.ndarray], spacing: str, rng: np.random.Generator) -> np.ndarray:
    """The digits as one line of ink (float (H, W) 0..1) with the spacing class's gaps."""
    height = rng.uniform(*HEIGHT)
    slant = rng.uniform(-SLANT, SLANT)
    shapes = [
        shaped(d, height * rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER), slant + rng.uniform(-1, 1) * SLANT_JITTER)
        for d in digits
    ]
    margin = int(height)
    rows = int(2 * height) + 2 * margin
    canvas = np.zeros((rows, sum(s.shape[1] for s in shapes) + int(height) * len(shapes) + 2 * margin), np.float32)
    x = margin
    for k, shape in enumerate(shapes):
        top = int(round(rows / 2 - shape.shape[0] / 2 + rng.uniform(-BASELINE, BASELINE) * height))
        if k:
            x = _next_x(canvas, shape, top, spacing, height, rng)
        region = canvas[top : top + shape.shape[0], x : x + shape.shape[1]]
        np.maximum(region, shape, out=region)
    cols = np.flatnonzero(canvas.max(axis=0) > 0)
    return canvas[:, : cols[-1] + margin]


def _next_x(canvas: np.ndarray, shape: np.ndarray, top: int, spacing: str, height: float, rng) -> int:
    """Where the next digit's left side goes: its ink at the class's distance from the ink already there."""
    band = canvas[top : top + shape.shape[0]] > 0.3
    mine = shape > 0.3
    contact = -(10**9)
    for r in range(shape.shape[0]):
        have, new = np.flatnonzero(band[r]), np.flatnonzero(mine[r])
        if have.size and new.size:
            contact = max(contact, have[-1] - new[0] + 1)  # the first x at which row r does not overlap
    if contact < -(10**8):  # no row shared (a large baseline shift): against the box
        contact = int(np.flatnonzero(canvas.max(axis=0) > 0)[-1]) + 1
    if spacing == "wide":
        gap = rng.uniform(0.3, 0.8) * height
    elif spacing == "narrow":
        gap = rng.uniform(2, max(2.0, 0.15 * height))
    else:
        gap = -int(rng.integers(0, 4))  # adjacent, or 1-3 px of overlap
    return max(0, int(round(contact + gap)))


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def run_class(classifier, images, labels, spacing, count, rng) -> dict:
    numbers, truths, singles, single_truth = [], [], [], []
    for _ in range(count):
        length = int(rng.integers(DIGITS[0], DIGITS[1] + 1))
        chosen = rng.integers(0, len(images), size=length)
        digits = [images[k] for k in chosen]
        state = rng.bit_generator.state
        numbers.append(as_photo(compose(digits, spacing, rng), rng))
        truths.append("".join(str(labels[k]) for k in chosen))
        rng.bit_generator.state = state  # each digit alone, drawn as in its number
        height = rng.uniform(*HEIGHT)
        for digit in digits:
            alone = shaped(digit, height, rng.uniform(-SLANT, SLANT))
            singles.append(as_photo(np.pad(alone, int(height / 2)), rng))
        single_truth += [int(labels[k]) for k in chosen]
    readings = _batched(read_images, classifier, numbers, {"digits": [], "refused": True})
    read = ["".join(d["label"] for d in reading["digits"]) for reading in readings]
    answers = _batched(recognise_images, classifier, singles, {"digit": -1, "reason": "refused"})
    digits_total = sum(len(t) for t in truths)
    right_digits = sum(max(0, len(t) - edit_distance(r, t)) for r, t in zip(read, truths))
    wrong = [(t, r) for t, r in zip(truths, read) if t != r]
    return {
        "numbers": count,
        "digits": digits_total,
        "whole_number": sum(r == t for r, t in zip(read, truths)) / count,
        "per_digit": right_digits / digits_total,
        "single_digit": float(np.mean([a["digit"] == t for a, t in zip(answers, single_truth)])),
        "wrong_count": sum(len(r) != len(t) for r, t in zip(read, truths)),
        "rejected_positions": sum(d["not_a_digit"] for reading in readings for d in reading["digits"]),
        "refused": sum("refused" in reading for reading in readings) + sum(a["reason"] == "refused" for a in answers),
        "singles_said_several": sum(a["reason"] is not None and a["reason"].startswith("several") for a in answers),
        "examples_wrong": wrong[:8],
    }


def _batched(function, classifier, pictures: list, refused: dict, size: int = 25) -> list[dict]:
    """function(classifier, [(name, picture)]) over `pictures` in batches; a picture refused (no ink found)
    answers `refused`, the rest of its batch read again one by one."""
    answers = []
    for start in range(0, len(pictures), size):
        named = [(f"{start + i}", picture) for i, picture in enumerate(pictures[start : start + size])]
        try:
            answers += function(classifier, named)
        except ImageError:
            for one in named:
                try:
                    answers += function(classifier, [one])
                except ImageError:
                    answers.append(refused)
    return answers


def markdown(result: dict) -> str:
    lines = [
        f"# Reading numbers: MNIST {result['split']} digits in lines, rendered as photos",
        "",
        *common.header_lines(result),
        f"- command: `{result['command']}`",
        f"- model: {result['model']}; seed {result['seed']}; {result['count']} numbers of {DIGITS[0]}-{DIGITS[1]} "
        f"digits per spacing class",
        "",
        "| spacing | numbers | digits | whole number % | per digit % | single digit (predict) % | target (whole) "
        "| wrong digit count | predict said 'several' on a single |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spacing, row in result["classes"].items():
        lines.append(
            f"| {spacing} | {row['numbers']} | {row['digits']} | {100 * row['whole_number']:.2f} | "
            f"{100 * row['per_digit']:.2f} | {100 * row['single_digit']:.2f} | >= {100 * TARGETS[spacing]:.0f} | "
            f"{row['wrong_count']} | {row['singles_said_several']} "
            f"({100 * row['singles_said_several'] / row['digits']:.2f}%) |"
        )
    said = sum(row["singles_said_several"] for row in result["classes"].values())
    singles = sum(row["digits"] for row in result["classes"].values())
    lines += [
        "",
        f"Predict called a single photographed digit 'several digits' {said} times in {singles} "
        f"({100 * said / singles:.2f}%; target under 0.5%).",
    ]
    lines += ["", "Some numbers read wrong (truth -> read):", ""]
    for spacing, row in result["classes"].items():
        lines.append(f"- {spacing}: " + ", ".join(f"{t} -> {r}" for t, r in row["examples_wrong"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--count", type=common.positive, default=300, help="numbers per spacing class")
    parser.add_argument("--split", choices=("test", "train"), default="test", help="the MNIST digits composed")
    parser.add_argument("--seed", type=common.count, default=0, help="seed of the composition and rendering")
    parser.add_argument("--classes", type=common.names(CLASSES), default=list(CLASSES), help="spacing classes")
    common.add_model(parser)
    common.add_out(parser)
    common.add_data_dir(parser)
    args = parser.parse_args(argv)
    about = machine()
    dataset = common.load_data(args.data_dir)
    images = (dataset.test_images if args.split == "test" else dataset.train_images).numpy()
    labels = (dataset.test_labels if args.split == "test" else dataset.train_labels).numpy().astype(int)
    classifier = open_classifier(args.model)
    classes = {}
    for number, spacing in enumerate(args.classes):
        rng = np.random.default_rng([args.seed, number])
        classes[spacing] = run_class(classifier, images, labels, spacing, args.count, rng)
        row = classes[spacing]
        log(
            f"{spacing}: whole {row['whole_number']:.2%}, per digit {row['per_digit']:.2%}, single "
            f"{row['single_digit']:.2%}, wrong count {row['wrong_count']}, {row['examples_wrong'][:4]}"
        )
    result = common.results(
        about, split=args.split, seed=args.seed, count=args.count, model=classifier.source, classes=classes
    )
    stem = common.RESULTS.parent / "results" / ("read_numbers" if args.split == "test" else "read_numbers-train")
    from pathlib import Path

    common.save_report(Path(args.out) / stem.name, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
