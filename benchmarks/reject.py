#!/usr/bin/env python
"""How well a model tells digits from what is not a digit: AUROC of its calibrated top probability, and the
share it rejects at its "not a digit" threshold, on digits and on non-digits photographed as users send them.

    .venv/bin/python benchmarks/reject.py [--model RUN_DIR|FILE.onnx] [--split benchmark|validation]
                                          [--count 2000] [--redrawn 2000] [--seed 0] [--data-dir DIR] [--out DIR]

--split benchmark (the report): the digits are MNIST's test set (straight, 28x28) and its first --redrawn digits
re-drawn as image files would be (redrawn_accuracy.redraw, then to_mnist); the non-digits are --count of each
benchmark-split set of digitlab.data.nondigits (fonts and seeds never trained or chosen on; Fashion-MNIST's test
file), photographed (data.photo) and brought to MNIST's form (to_mnist): letters and symbols without and with the
digit look-alikes (O, l, S, Z, B, ...), shapes without and with a plain ellipse and a single stroke, scribbles,
clothes. The share rejected is at the model's reject_below (`digitlab calibrate`; none without it).

--split validation (choosing a fine-tune's settings): the digits are the run's validation split, the non-digits
the validation-split sets; the share rejected is also given at the threshold that rejects 0.5% of those digits.

Each set's AUROC: the chance that a random digit gets a higher top probability than a random non-digit of the set
(1 = every digit above every non-digit). The model is the shipped one unless --model names another.
Writes benchmarks/results/reject.md and .json (reject-validation.* for --split validation).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import stats

import common
import redrawn_accuracy
from common import percent
from digitlab.data.dataset import load, prepare
from digitlab.inference.classifier import DEFAULT_MODEL, open_classifier
from digitlab.inference.decode import ImageError
from digitlab.inference.mnist_like import to_mnist
from digitlab.inference.negatives import prepare as prepare_nondigits
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import log
from digitlab.store import rundir

# (title, family, with the look-alikes)
SETS = [
    ("Fashion-MNIST clothes as photos", "fashion", False),
    ("letters and symbols, look-alikes excluded", "letters", False),
    ("letters and symbols, look-alikes included", "letters", True),
    ("shapes, ellipse and stroke excluded", "shapes", False),
    ("shapes, ellipse and stroke included", "shapes", True),
    ("scribbles", "scribbles", False),
]
TARGETS = {"auroc": 0.99, "digits_rejected": 0.01, "nondigits_rejected": 0.90}
SELECTION_SHARE = 0.005  # --split validation: the threshold rejecting this share of the validation digits


def auroc(digits: np.ndarray, others: np.ndarray) -> float:
    """P(a digit's score > a non-digit's), ties counted half: the Mann-Whitney statistic, from ranks."""
    ranks = stats.rankdata(np.concatenate([digits, others]))
    n, m = len(digits), len(others)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * m))


def top_probability(classifier, images: np.ndarray) -> np.ndarray:
    return classifier.probabilities(images).max(axis=1)


def redrawn_digits(digits: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """The digits re-drawn as pictures and brought back to 28x28 as predict does; and how many to_mnist refused
    (those count as rejected)."""
    rng = np.random.default_rng(seed)
    seen, refused = [], 0
    for number, digit in enumerate(digits):
        image, _ = redrawn_accuracy.redraw(digit, rng)
        try:
            seen.append(to_mnist(image, f"digit {number}"))
        except ImageError:
            refused += 1
    return np.stack(seen), refused


def validation_digits(model: str | None, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The run's validation split (its val_size and seed), as it trained beside it."""
    config = rundir.load_config(Path(model) if model else DEFAULT_MODEL)
    if not config.val_size:
        raise SystemExit(f"{model}: the run kept no validation split (--val-size); --split validation needs one")
    data = prepare(load(common.data_dir(data_dir), log=log), config.val_size, seed=config.seed)
    return data.val_images.numpy(), data.val_labels.numpy()


def row(title: str, scores: np.ndarray, digit_scores, threshold, chosen, refused: int = 0) -> dict:
    """A set's line: its AUROC against `digit_scores` (None: the set is digits), the shares rejected at the
    threshold (to_mnist's refusals counted as rejected) and at the selection threshold."""
    rejected = None if threshold is None else float(((scores < threshold).sum() + refused) / (len(scores) + refused))
    at_chosen = None if chosen is None else float((scores < chosen).mean())
    area = None if digit_scores is None else auroc(digit_scores, scores)
    return {
        "set": title, "images": len(scores) + refused, "auroc": area,
        "rejected": rejected, "rejected_at_selection": at_chosen, "mean_top_probability": float(scores.mean()),
    }  # fmt: skip


def measure(args) -> dict:
    classifier = open_classifier(args.model)
    threshold = getattr(classifier, "reject_below", None)
    if args.split == "benchmark":
        dataset = common.load_data(args.data_dir)
        digits, labels = dataset.test_images.numpy(), dataset.test_labels.numpy()
    else:
        digits, labels = validation_digits(args.model, args.data_dir)
    probabilities = classifier.probabilities(digits)
    digit_scores = probabilities.max(axis=1)
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    chosen = float(np.quantile(digit_scores, SELECTION_SHARE)) if args.split == "validation" else None
    log(f"{len(digits)} {args.split} digits: accuracy {accuracy:.2%}, threshold {threshold}, selection {chosen}")
    name = "MNIST test digits" if args.split == "benchmark" else "MNIST validation digits (the run's split)"
    rows = [row(name, digit_scores, None, threshold, chosen)]
    if args.split == "benchmark" and args.redrawn:
        seen, refused = redrawn_digits(digits[: args.redrawn], args.seed)
        title = f"MNIST test digits re-drawn as pictures (first {args.redrawn})"
        rows.append(row(title, top_probability(classifier, seen), None, threshold, chosen, refused))
    for title, family, look_alikes in SETS:
        images, _ = prepare_nondigits(family, args.split, args.count, args.seed, look_alikes=look_alikes)
        rows.append(row(title, top_probability(classifier, images), digit_scores, threshold, chosen))
        rows[-1]["look_alikes"] = look_alikes
        log(f"{title}: AUROC {rows[-1]['auroc']:.4f}")
    setup = {
        "model": classifier.source, "split": args.split, "count": args.count, "redrawn": args.redrawn,
        "seed": args.seed, "reject_below": threshold, "temperature": getattr(classifier, "temperature", None),
        "accuracy": accuracy, "selection_share": SELECTION_SHARE if chosen is not None else None,
        "selection_threshold": chosen,
    }  # fmt: skip
    return common.results(benchmark_report.machine(), setup=setup, rows=rows, targets=TARGETS)


def markdown(result: dict) -> str:
    setup, rows = result["setup"], result["rows"]
    threshold = setup["reject_below"]
    lines = [
        f"# Digit or not: rejection on the {setup['split']} split",
        "",
        *common.header_lines(result),
        f"- command: `{result['command']}`",
        f"- model: {setup['model']} (temperature {setup['temperature']}, reject_below {threshold}); accuracy on "
        f"these digits {100 * setup['accuracy']:.2f}%",
        f"- non-digits: {setup['count']} of each {setup['split']}-split set (digitlab.data.nondigits, seed "
        f"{setup['seed']}), photographed and brought to 28x28 as predict does",
        "",
        "| set | images | AUROC vs the digits | % rejected at reject_below"
        + (
            f" | % rejected at {100 * setup['selection_share']:.1f}% of digits rejected"
            if setup["selection_share"]
            else ""
        )
        + " | mean top probability |",
        "|---|---|---|---|" + ("---|" if setup["selection_share"] else "") + "---|",
    ]
    for r in rows:
        auc = "-" if r["auroc"] is None else f"{r['auroc']:.4f}"
        extra = f" | {percent(r['rejected_at_selection'])}" if setup["selection_share"] else ""
        lines.append(
            f"| {r['set']} | {r['images']} | {auc} | {percent(r['rejected'])}{extra} "
            f"| {r['mean_top_probability']:.3f} |"
        )
    # the targets hold for what is not a digit: the sets with look-alikes (an O is a 0) are reported beside them
    others = [r for r in rows if r["auroc"] is not None and not r.get("look_alikes")]
    met = all(r["auroc"] >= TARGETS["auroc"] for r in others)
    summary = f"Targets, on the sets without look-alikes: AUROC >= {TARGETS['auroc']} against each: "
    summary += f"{'met' if met else 'NOT met'} ({min(r['auroc'] for r in others):.4f} at least)"
    if threshold is None:
        summary += "; no reject_below: the model is not calibrated (`digitlab calibrate RUN`), so nothing is rejected."
    else:
        digits, non = rows[0]["rejected"], [r["rejected"] for r in others]
        summary += (
            f"; MNIST digits rejected {percent(digits)}% (target <= {100 * TARGETS['digits_rejected']:.0f}%): "
            f"{'met' if digits <= TARGETS['digits_rejected'] else 'NOT met'}; non-digits rejected "
            f"{percent(min(non))}-{percent(max(non))}% (target >= {100 * TARGETS['nondigits_rejected']:.0f}% each): "
            f"{'met' if min(non) >= TARGETS['nondigits_rejected'] else 'NOT met'}."
        )
    lines += ["", summary]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    common.add_model(parser)
    parser.add_argument("--split", choices=("benchmark", "validation"), default="benchmark", help="which data")
    parser.add_argument("--count", type=common.positive, default=2000, help="non-digits of each set")
    parser.add_argument("--redrawn", type=common.count, default=2000, help="MNIST test digits re-drawn (benchmark)")
    parser.add_argument("--seed", type=common.count, default=0, help="seed of the drawings")
    parser.add_argument("--name", default=None, help="file stem of the results (default: reject[-validation])")
    common.add_out(parser)
    common.add_data_dir(parser)
    args = parser.parse_args(argv)
    result = measure(args)
    name = args.name or ("reject" if args.split == "benchmark" else "reject-validation")
    common.save_report(Path(args.out) / name, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
