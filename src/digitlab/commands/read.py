"""`digitlab read [MODEL] IMAGE ...`: read the number (one line of handwritten digits) in each image file."""

from __future__ import annotations

import argparse

from digitlab.commands.options import print_answers, split_model
from digitlab.errors import ConfigError

HELP = "read the number (a line of handwritten digits) in each of your image files"
DESCRIPTION = (
    "Read the number in each image: the marks are grouped into digits left to right (specks and ruled lines "
    "ignored, touching digits split), each made MNIST-like and classified. A digit the model is not sure of is "
    "'not a digit' and shown as '?' in the number. A clean single digit is read as 'digitlab predict' reads it."
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "read", usage="%(prog)s [-h] [MODEL] IMAGE ... [options]", help=HELP, description=DESCRIPTION
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="[MODEL] IMAGE",
        help="MODEL: a finished run directory or an .onnx file (default: the model shipped with digitlab); then "
        "image files, folders (their images), glob patterns ('forms/*.jpg') or - for standard input",
    )
    parser.add_argument("--json", action="store_true", help="print the readings (boxes, probabilities) as JSON")
    parser.add_argument("--show-segments", metavar="DIR", help="write each digit's 28x28 image into DIR as a PNG")
    parser.add_argument("--device", default="cpu", help="device a run's model runs on (default cpu)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """MODEL is the first argument only if it names one. A file that cannot be read is reported on stderr, one
    line, and the others still read; the exit code is then 2."""
    from digitlab import console
    from digitlab.inference.classifier import open_classifier
    from digitlab.inference.read import read_files
    from digitlab.inference.recognise import find_images

    model, images = split_model(args.inputs)
    if not images:
        raise ConfigError("pass the image files to read: digitlab read [MODEL] IMAGE ...")
    classifier = open_classifier(model, device=args.device)
    results = read_files(classifier, find_images(images), args.show_segments)
    return print_answers(results, "readings", classifier.source, args.json, console.format_readings)
