"""One image's answer and its "not a digit" verdict, shared by predict (inference.recognise) and read
(inference.read), which both build on this module and never on each other the wrong way.

Holds an answer from class probabilities (answer, describe), the verdict (judge, LOW_CONFIDENCE, SEVERAL), the
check that a classifier takes the 28x28 images pictures are prepared as (check_shape), the --show folder and one
image written there (show_folder, show), and what a file argument may be (Source).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.errors import ConfigError, RunError
from digitlab.inference.classifier import Classifier
from digitlab.inference.mnist_like import IMAGE_SHAPE

TOP = 3  # the most probable classes listed with each answer
LOW_CONFIDENCE = "low confidence"
SEVERAL = "several digits ({count}): read them with 'digitlab read'"

Source = str | Path | tuple[str, bytes]  # a file's path, or (name, bytes) read elsewhere (standard input)


def describe(probabilities: np.ndarray, class_names: list[str] | None) -> list[dict]:
    """answer() for each row of class probabilities (N, classes) already computed, so that a caller that needs
    the probabilities too (the web API) runs the model once."""
    return [answer(row, class_names) for row in np.asarray(probabilities)]


def answer(probabilities: np.ndarray, class_names: list[str] | None) -> dict:
    """One image's class probabilities as {"digit": class index, "label": its name, "probability", "top3": the
    TOP most probable classes as [{"digit", "label", "probability"}], most probable first}."""
    from digitlab.console import class_name  # here: console loads PyTorch, which predict's workers need not

    order = np.argsort(-probabilities, kind="stable")[:TOP]  # stable: ties go to the lower class index
    top = [
        {"digit": int(c), "label": class_name(int(c), class_names), "probability": float(probabilities[c])}
        for c in order
    ]
    return top[0] | {"top3": top}


def judge(found: dict, reject_below: float | None, digits: int = 1) -> dict:
    """`found` (answer()'s fields) with the verdict: "not_a_digit" and its "reason" (None for a digit). `digits`:
    how many digits the picture holds (2 or more: "several digits")."""
    if digits >= 2:
        return found | {"not_a_digit": True, "reason": SEVERAL.format(count=digits)}
    if reject_below is not None and found["probability"] < reject_below:
        return found | {"not_a_digit": True, "reason": LOW_CONFIDENCE}
    return found | {"not_a_digit": False, "reason": None}


def check_shape(classifier: Classifier) -> None:
    """ConfigError unless the classifier takes the 28x28 images pictures are prepared as."""
    if tuple(classifier.image_shape) != IMAGE_SHAPE:
        height, width = classifier.image_shape
        raise ConfigError(
            f"{classifier.source} takes {height}x{width} images, but pictures are prepared as 28x28 MNIST "
            f"digits; use a model trained on 28x28 images"
        )


def show_folder(show_dir: str | Path | None) -> Path | None:
    """The --show folder, made if missing (None without one); RunError if it cannot be."""
    if show_dir is None:
        return None
    folder = Path(show_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot write {folder}: {error.strerror or error}; choose a writable folder") from None
    return folder


def show(folder: Path, number: int, name: str, image: np.ndarray) -> Path:
    """`image` written to `folder` as a PNG numbered `number` + 1 and named after `name`; its path."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("._") or "image"
    path = folder / f"{number + 1:04d}-{stem}.png"
    try:
        Image.fromarray(image).save(path)
    except OSError as error:
        raise RunError(f"cannot write {path}: {error.strerror or error}; choose a writable folder") from None
    return path
