"""Recognising the digits in a person's image files: each decoded (digitlab.inference.decode) and made MNIST-like
(digitlab.inference.mnist_like), then all classified in batches by one loaded model (digitlab.inference.classifier).

A file that cannot be used gives its own error entry and the others go on, so that one bad file in a folder
does not cost the answers for the rest. Each answer has the same fields as the web API's (digitlab.serve).

Holds the answers for images (recognise) or for probabilities already computed (describe, answer), the image
files command-line arguments name (find_images), one file's image as the model sees it (prepare), and the
whole of `digitlab predict MODEL FILE ...`'s work (predict_files).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.console import class_name
from digitlab.errors import ConfigError, RunError
from digitlab.inference.classifier import BATCH, Classifier
from digitlab.inference.decode import SUFFIXES, ImageError, decode, load_file
from digitlab.inference.mnist_like import IMAGE_SHAPE, to_mnist

TOP = 3  # the most probable classes listed with each answer

Source = str | Path | tuple[str, bytes]  # a file's path, or (name, bytes) read elsewhere (standard input)


def recognise(classifier: Classifier, images: np.ndarray) -> list[dict]:
    """uint8 images (N, H, W) -> per image {"digit": class index, "label": its name, "probability", "top3": the
    TOP most probable classes as [{"digit", "label", "probability"}], most probable first}."""
    return describe(classifier.probabilities(images), classifier.class_names)


def describe(probabilities: np.ndarray, class_names: list[str] | None) -> list[dict]:
    """recognise()'s answers from class probabilities (N, classes) already computed, so that a caller that
    needs the probabilities too (the web API) runs the model once."""
    return [answer(row, class_names) for row in np.asarray(probabilities)]


def answer(probabilities: np.ndarray, class_names: list[str] | None) -> dict:
    """One image's class probabilities as recognise() reports them."""
    order = np.argsort(-probabilities, kind="stable")[:TOP]  # stable: ties go to the lower class index
    top = [
        {"digit": int(c), "label": class_name(int(c), class_names), "probability": float(probabilities[c])}
        for c in order
    ]
    return top[0] | {"top3": top}


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


def predict_files(classifier: Classifier, sources: Iterable[Source], show_dir: str | Path | None = None) -> list[dict]:
    """Classify each file: per source, in order, {"file": its name} with recognise()'s fields, or with "error":
    one line naming the file and what was wrong. With `show_dir`, each 28x28 image the model saw is written there
    as a PNG (its path under "preprocessed"), numbered in order so that files of the same name stay apart."""
    if tuple(classifier.image_shape) != IMAGE_SHAPE:
        height, width = classifier.image_shape
        raise ConfigError(
            f"{classifier.source} takes {height}x{width} images, but pictures are prepared as 28x28 MNIST "
            f"digits; use a model trained on 28x28 images"
        )
    folder = _show_folder(show_dir)
    results: list[dict] = []
    chunk: list[tuple[int, np.ndarray]] = []  # (index into results, image) waiting to be classified

    def classify() -> None:
        answers = recognise(classifier, np.stack([image for _, image in chunk]))
        for (index, _), found in zip(chunk, answers):
            results[index] |= found
        chunk.clear()

    for number, source in enumerate(sources):
        name = source[0] if isinstance(source, tuple) else str(source)
        try:
            name, image = prepare(source)
        except ImageError as error:
            results.append({"file": name, "error": str(error)})
            continue
        results.append({"file": name})
        if folder is not None:
            results[-1]["preprocessed"] = str(_show(folder, number, name, image))
        chunk.append((len(results) - 1, image))
        if len(chunk) == BATCH:
            classify()
    if chunk:
        classify()
    return results


def _show_folder(show_dir: str | Path | None) -> Path | None:
    if show_dir is None:
        return None
    folder = Path(show_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot write {folder}: {error.strerror or error}; choose a writable folder") from None
    return folder


def _show(folder: Path, number: int, name: str, image: np.ndarray) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("._") or "image"
    path = folder / f"{number + 1:04d}-{stem}.png"
    try:
        Image.fromarray(image).save(path)
    except OSError as error:
        raise RunError(f"cannot write {path}: {error.strerror or error}; choose a writable folder") from None
    return path
