"""`digitlab predict [MODEL] [IMAGE ...]`: recognise the digit in each of a person's image files, or, with a
run directory alone, classify MNIST test digits drawn as text."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitlab.commands.options import DATA_DIR, WEIGHTS, print_answers, split_model
from digitlab.errors import ConfigError
from digitlab.inference.workers import MIN_FILES_PER_WORKER, worker_count

HELP = "recognise the digits in your own image files (made MNIST-like first), or classify test digits"
DESCRIPTION = (
    "Recognise the digit in each image: a photo, a scan or a drawing, dark on light or light on dark, is cropped, "
    "scaled into 20x20 and centred by mass in 28x28 as MNIST's digits were. With a run directory and no images, "
    "classify MNIST test digits instead."
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "predict",
        usage="%(prog)s [-h] [MODEL] [IMAGE ...] [options]",
        help=HELP,
        description=DESCRIPTION,
        parents=[DATA_DIR, WEIGHTS],
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="[MODEL] IMAGE",
        help="MODEL: a finished run directory or an .onnx file (default: the model shipped with digitlab); then "
        "image files, folders (their images), glob patterns ('digits/*.png') or - for standard input",
    )
    parser.add_argument("--json", action="store_true", help="print the answers as one JSON document")
    parser.add_argument(
        "--show-preprocessed", metavar="DIR", help="write each 28x28 image the model saw into DIR as a PNG"
    )
    parser.add_argument("--device", default="cpu", help="device a run's model runs on (default cpu)")
    parser.add_argument(
        "--workers",
        type=int,
        help="processes that decode and prepare the images while the model runs (default: one per core when "
        f"there are at least {MIN_FILES_PER_WORKER} images per worker; 0: all in this process)",
    )
    parser.add_argument(
        "--test-samples", type=int, help="without images: how many MNIST test digits to classify (default 5)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """MODEL is the first argument only if it names one, else the default model answers. A file that cannot be
    used is reported on stderr, one line, and the others still answered; the exit code is then 2."""
    from digitlab import console
    from digitlab.inference.classifier import open_classifier
    from digitlab.inference.recognise import find_images, predict_files

    model, images = split_model(args.inputs)
    if not images:
        if model is None or Path(model).suffix.lower() == ".onnx":
            raise ConfigError(
                "pass the image files to recognise: digitlab predict [MODEL] IMAGE ... (or a run directory alone "
                "to classify MNIST test digits)"
            )
        classify_test_digits(model, 5 if args.test_samples is None else args.test_samples, args.data_dir, args.weights)
        return 0
    if args.test_samples is not None or args.data_dir is not None:
        raise ConfigError("--test-samples and --data-dir choose MNIST test digits; drop them when passing images")
    only = Path(images[0])
    if model is None and len(images) == 1 and only.is_dir() and find_images(images) == images:
        raise ConfigError(
            f"{only} is neither a run directory (no config.json) nor a folder of image files; pass a run directory "
            f"printed by 'digitlab train', or images"
        )
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must be 0 or more, got {args.workers}")
    files = find_images(images)
    workers = worker_count(len(files)) if args.workers is None else args.workers
    classifier = open_classifier(model, device=args.device, weights=args.weights)
    results = predict_files(classifier, files, args.show_preprocessed, workers)
    return print_answers(results, "predictions", classifier.source, args.json, console.format_predictions)


def classify_test_digits(run_dir: str, samples: int, data_dir: str | None, weights: str) -> None:
    """Classify `samples` MNIST test digits (chosen at random, seed 0) with a run's model, each drawn as text."""
    import torch

    from digitlab import console
    from digitlab.data.matching import matching_test_data
    from digitlab.inference.calibration import for_weights
    from digitlab.inference.classifier import probabilities
    from digitlab.inference.load import load_model

    if samples <= 0:
        raise ConfigError(f"--test-samples must be positive, got {samples}")
    model, info = load_model(Path(run_dir), weights=weights)
    dataset = matching_test_data(data_dir, info)
    samples = min(samples, len(dataset.test_labels))
    chosen = torch.randperm(len(dataset.test_labels), generator=torch.Generator().manual_seed(0))[:samples]
    calibration = for_weights(run_dir, info["weights"])  # the probabilities predict gives for files, calibrated
    probs = probabilities(model, dataset.test_images[chosen], calibration.temperature if calibration else 1.0)
    for index, p in zip(chosen.tolist(), probs):
        label, guess = int(dataset.test_labels[index]), int(p.argmax())
        names = info.get("class_names")
        print(
            f"test image {index}: predicted {console.class_name(guess, names)} ({p[guess]:.1%}), "
            f"true {console.class_name(label, names)}{'' if guess == label else '  <- wrong'}"
        )
        print("\n".join("    " + line for line in console.ascii_digit(dataset.test_images[index])))
