"""Recognising the digits in a person's image files: each decoded (digitlab.inference.decode) and made MNIST-like
(digitlab.inference.mnist_like), then all classified in batches by one loaded model (digitlab.inference.classifier).

A file that cannot be used gives its own error entry and the others go on, so that one bad file in a folder
does not cost the answers for the rest. Each answer has the same fields as the web API's (digitlab.serve).

Every answer of predict says whether it is "not a digit" ("not_a_digit": bool, "reason": str | None), the
digit, label, probability and top3 fields still the model's best guess: "low confidence" when the calibrated
top probability is under the classifier's reject_below, "several digits (N): ..." when the picture holds a
line of N >= 2 digits: separate marks standing apart that each read as a confident digit (inference.read.several),
never a digit cut in two.

Holds the answers for images (recognise), the image files command-line arguments name (find_images), one
file's image as the model sees it (prepare), a batch of decoded pictures' answers (recognise_images, for the web
API), one file's part of predict as a worker process does it (prepared: JPEGs decoded drafted) and the whole of
`digitlab predict MODEL FILE ...`'s work (predict_files, its files prepared by inference.workers' processes).
One answer and its verdict (answer, describe, judge), and what predict and read share (check_shape, show_folder,
show, Source), are in inference.answers, below both.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.inference import read
from digitlab.inference.answers import Source, answer, check_shape, describe, judge, show, show_folder
from digitlab.inference.classifier import BATCH, Classifier
from digitlab.inference.decode import SUFFIXES, ImageError, decode, load_file, read_stdin
from digitlab.inference.mnist_like import ink_to_mnist, kept_ink, raw_ink, to_mnist
from digitlab.inference.workers import in_order


def recognise(classifier: Classifier, images: np.ndarray) -> list[dict]:
    """uint8 images (N, H, W) -> per image {"digit": class index, "label": its name, "probability", "top3": the
    TOP most probable classes as [{"digit", "label", "probability"}], most probable first}."""
    return describe(classifier.probabilities(images), classifier.class_names)


def find_images(arguments: Iterable[str]) -> list[str]:
    """Command-line arguments as the image files they name, in order: a file as given; a folder's image files
    (SUFFIXES, sorted by name); a glob pattern's matches (sorted), expanded here so that a quoted pattern works
    too; "-" (standard input) as given. An argument naming nothing, a folder without images or a pattern matching
    nothing is kept as given, for load_file to say so."""
    found: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if argument != "-" and not path.exists() and any(character in argument for character in "*?["):
            matches = sorted(glob.glob(argument))
            if matches:
                found += find_images(matches)
                continue
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
            if files:
                found += [str(file) for file in files]
                continue
        found.append(argument)
    return found


def prepare(source: Source) -> tuple[str, np.ndarray]:
    """(name, the 28x28 image the model sees) for a file's path or a (name, bytes) pair; ImageError if unusable."""
    if isinstance(source, tuple):
        name, data = source
        return name, to_mnist(decode(data, name), name)
    return str(source), to_mnist(load_file(source), str(source))


def _seen(picture: Image.Image, name: str):
    """(the 28x28 image predict classifies, the picture's line of digits as inference.read cuts it, or None when
    it holds too many marks to be one)."""
    ink = raw_ink(picture, name)
    image = ink_to_mnist(kept_ink(*ink, name))
    try:
        return image, read.several_marks(picture, name, ink)
    except ImageError:
        return image, None


def _answers(classifier: Classifier, seen: list) -> list[dict]:
    """predict's answers, with the verdict, for _seen()'s pairs: all images and candidates in one batch. Each
    has "image" (its 28x28) and "probabilities" (an array) besides recognise()'s and judge()'s fields."""
    several = [found for _, found in seen if found is not None and len({p.mark for p in found.line.pieces}) > 1]
    images = [image for image, _ in seen] + [image for found in several for image in found.images]
    probabilities = classifier.probabilities(np.stack(images))
    digits, start = {}, len(seen)
    reject_below = getattr(classifier, "reject_below", None)
    for found in several:  # a single mark is one digit; several may still be one (a 5's bar): the model says
        rows = probabilities[start : start + len(found.images)]
        start += len(found.images)
        digits[id(found)] = read.several(found, rows, reject_below)
    return [
        judge(answer(row, classifier.class_names), reject_below, digits.get(id(found), 1))
        | {"probabilities": row, "image": image}
        for (image, found), row in zip(seen, probabilities)
    ]


def recognise_images(classifier: Classifier, pictures: list[tuple[str, Image.Image]]) -> list[dict]:
    """predict's answer for each decoded (name, picture), as one batch: answer()'s and judge()'s fields with
    "probabilities" (a float array) and "image" (the uint8 28x28 the model saw). ImageError if one has no ink."""
    check_shape(classifier)
    return _answers(classifier, [_seen(picture, name) for name, picture in pictures])


def prepared(source: Source) -> tuple[str, np.ndarray, read.Page | None] | str:
    """One file's part of predict, for a worker process: (its name, the 28x28 image predict classifies, its
    line of several marks settled or None), or the one-line error that makes it unusable. A JPEG is decoded
    drafted (decode.DRAFT_SIDE)."""
    name = source[0] if isinstance(source, tuple) else str(source)
    if isinstance(source, tuple) and isinstance(source[1], str):  # standard input that could not be read
        return source[1]
    try:
        picture = decode(source[1], name, draft=True) if isinstance(source, tuple) else load_file(source, draft=True)
        image, found = _seen(picture, name)
    except ImageError as error:
        return str(error)
    return name, image, None if found is None else found.settled()


def predict_files(
    classifier: Classifier, sources: Iterable[Source], show_dir: str | Path | None = None, workers: int = 0
) -> list[dict]:
    """Classify each file: per source, in order, {"file": its name} with recognise()'s and judge()'s fields, or
    with "error": one line naming the file and what was wrong. With `show_dir`, each 28x28 image the model saw is
    written there as a PNG (its path under "preprocessed"), numbered in order so that files of the same name stay
    apart. With `workers`, the files are prepared by that many processes (workers.worker_count: one per core
    for enough files) while this one runs the model on each BATCH of them; a script that asks for them must
    start from an `if __name__ == "__main__":` block, as multiprocessing's are."""
    check_shape(classifier)
    folder = show_folder(show_dir)
    sources = [_stdin_read(source) for source in sources]  # a worker has no standard input of its own
    results: list[dict] = []
    chunk: list[tuple[int, tuple]] = []  # (index into results, _seen()'s pair) waiting to be classified

    def classify() -> None:
        for (index, _), found in zip(chunk, _answers(classifier, [pair for _, pair in chunk])):
            results[index] |= {key: value for key, value in found.items() if key not in ("image", "probabilities")}
        chunk.clear()

    for number, (source, done) in enumerate(zip(sources, in_order(prepared, sources, workers))):
        if isinstance(done, str):
            results.append({"file": source[0] if isinstance(source, tuple) else str(source), "error": done})
            continue
        name, image, found = done
        results.append({"file": name})
        if folder is not None:
            results[-1]["preprocessed"] = str(show(folder, number, name, image))
        chunk.append((len(results) - 1, (image, found)))
        if len(chunk) == BATCH:
            classify()
    if chunk:
        classify()
    return results


def _stdin_read(source: Source) -> Source | tuple[str, bytes | str]:
    """A source as a worker can read it: "-" becomes ("-", standard input's bytes), or ("-", the error)."""
    if isinstance(source, tuple) or str(source) != "-":
        return source
    try:
        return "-", read_stdin()
    except ImageError as error:
        return "-", str(error)
