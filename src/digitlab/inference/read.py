"""Reading the number in a picture: one line of handwritten digits, cut into digits (inference.segment), each
made MNIST-like (mnist_like.ink_to_mnist) and classified, every candidate digit of every picture in one batch.

read_number(classifier, image, name) answers one picture (JSON-serialisable):

    {"number": "20?6",                      the digits left to right, "?" where a position is not a digit
     "not_a_digit": false,                  true only when no position was read as a digit
     "reason": null,                        then why ("low confidence"), else null
     "digits": [{"box": [x0, y0, x1, y1],   the digit's ink in the picture's pixels (x1, y1 exclusive)
                 "digit": 2, "label": "2", "probability": 0.99, "top3": [...],   the model's best guess
                 "not_a_digit": false, "reason": null,                           answers.judge's verdict
                 "probabilities": [...]}, ...]}                                  every class's, calibrated

read_images() answers a batch of pictures (each digit with "image", the uint8 28x28 the model saw, and its
probabilities as an array), read_files() a command line's files (an error entry for a bad file, the others
still read). Pages (Page, page), the digits chosen on them (chosen_spans) and how many
digits predict should say a picture holds (several) serve predict's "several digits" verdict (recognise), which
cuts no picture of a single mark (several_marks) and takes a worker's page settled (Page.settled). Holds
WORK_HEIGHT, MAX_DIGITS, MAX_MARKS and MAX_PARTS, the bounds on one picture's work.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.inference import segment
from digitlab.inference.answers import Source, answer, check_shape, judge, show, show_folder
from digitlab.inference.classifier import Classifier
from digitlab.inference.decode import ImageError, decode, load_file
from digitlab.inference.mnist_like import ink_to_mnist, raw_ink, scaled_ink

WORK_HEIGHT = 160  # rows of ink a line is cut at, at most (a taller picture is reduced first)
MAX_DIGITS = 32  # digits read from one picture: a line, not a page
MAX_MARKS = 4 * MAX_DIGITS  # separate marks of ink on one picture (a digit may be in several)
MAX_PARTS = 8 * MAX_DIGITS  # pieces once wide marks are cut: bounds the candidates (segment.MAX_PIECES per piece)
CONFIDENT = 0.9  # several(): a digit this probable counts, for a model without a 'not a digit' threshold


@dataclass
class Page:
    """One picture's line: its pieces and candidate digits, each candidate as the model will see it."""

    name: str
    line: segment.Line
    ink: np.ndarray  # the picture's ink plane (mnist_like.scaled_ink of the pieces)
    boxes: list[tuple[int, int, int, int]]  # per line.spans, in the picture's pixels
    _images: list[np.ndarray] | None = None

    @property
    def images(self) -> list[np.ndarray]:
        """uint8 (28, 28) per line.spans: each candidate's own ink made MNIST-like (made when first asked for:
        predict needs none for a picture of one mark)."""
        if self._images is None:
            self._images = [ink_to_mnist(segment.candidate(self.line, self.ink, span)) for span in self.line.spans]
        return self._images

    def settled(self) -> Page:
        """This page with its candidates' images made and its ink plane dropped: all that predict needs of it,
        small enough for a worker process to send back."""
        return dataclasses.replace(self, ink=np.zeros((0, 0), dtype=np.float32), _images=self.images)


def page(image: Image.Image, name: str, ink: tuple[np.ndarray, float] | None = None) -> Page:
    """The line of digits in `image` cut into pieces, with every candidate digit made MNIST-like; `ink` is
    mnist_like.raw_ink's answer when the caller has it. ImageError if there is no ink or far too much."""
    return _page(image, name, ink, cut_one=True)


def several_marks(image: Image.Image, name: str, ink: tuple[np.ndarray, float] | None = None) -> Page | None:
    """page(), but None for a picture of one mark, found before any mark is cut: a single mark is one digit
    to several() (cuts inside one mark never make several), so predict need not cut it. ImageError as page()."""
    return _page(image, name, ink, cut_one=False)


def _page(image: Image.Image, name: str, ink: tuple[np.ndarray, float] | None, cut_one: bool) -> Page | None:
    plane, threshold = ink if ink is not None else raw_ink(image, name)
    plane = _bounded(plane, threshold)
    binary = plane > threshold
    marks = segment.marks(binary)
    if len(marks.kept) == 1 and not cut_one:
        return None
    line = segment.pieces(binary, marks)
    if not line.pieces:
        raise ImageError(
            f"{name}: no ink found beyond specks; pass a picture of digits, dark on light or light on dark"
        )
    marks = len({piece.mark for piece in line.pieces})
    if marks > MAX_MARKS or len(line.pieces) > MAX_PARTS:
        raise ImageError(
            f"{name}: {marks} separate marks ({len(line.pieces)} pieces) found, too many for one line of at most "
            f"{MAX_DIGITS} digits; crop the picture to the number"
        )
    ink_plane = scaled_ink(plane, binary & (line.labels > 0), threshold)
    sx, sy = image.size[0] / binary.shape[1], image.size[1] / binary.shape[0]  # a huge picture was reduced
    boxes = []
    for span in line.spans:
        x0, y0, x1, y1 = segment.box(line, span)
        box = (math.floor(x0 * sx), math.floor(y0 * sy), math.ceil(x1 * sx), math.ceil(y1 * sy))
        boxes.append((box[0], box[1], min(box[2], image.size[0]), min(box[3], image.size[1])))
    return Page(name, line, ink_plane, boxes)


def _bounded(plane: np.ndarray, threshold: float) -> np.ndarray:
    """The ink plane reduced (block means) until its ink is at most WORK_HEIGHT rows tall: cutting a wide mark
    costs memory in its height squared times its width, and no digit needs more rows to be read."""
    rows = np.flatnonzero((plane > threshold).any(axis=1))
    factor = math.ceil((rows[-1] - rows[0] + 1) / WORK_HEIGHT) if rows.size else 1
    if factor <= 1:
        return plane
    height, width = (plane.shape[0] // factor) * factor, (plane.shape[1] // factor) * factor
    return plane[:height, :width].reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))


def chosen_spans(found: Page, probabilities: np.ndarray) -> list[int]:
    """The indices into found.line.spans of the digits read, left to right, from the candidates' probabilities
    (one row per span)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    best = np.log(np.clip(probabilities.max(axis=1), 1e-12, None))
    chosen = segment.choose(found.line, best, probabilities.argmax(axis=1))
    index = {span: k for k, span in enumerate(found.line.spans)}
    return [index[span] for span in chosen]


def several(found: Page, probabilities: np.ndarray, reject_below: float | None) -> int:
    """How many digits predict says the picture holds: the digits read (chosen_spans) when they fall in two or
    more groups of marks standing apart (segment.groups) that each hold a digit read at or above `reject_below`
    (CONFIDENT without one); else 1. Cuts inside one mark never make several: a wide or slanted digit stays one."""
    chosen = chosen_spans(found, probabilities)
    threshold = CONFIDENT if reject_below is None else reject_below
    sure = [float(np.max(probabilities[k])) >= threshold for k in chosen]
    standing = segment.groups(found.line, [found.line.spans[k] for k in chosen])
    confident = sum(any(sure[k] for k in group) for group in standing)
    return len(chosen) if confident >= 2 else 1


def read_images(classifier: Classifier, pictures: list[tuple[str, Image.Image]]) -> list[dict]:
    """Per (name, picture): the reading described above, each digit also with "image" (uint8 28x28) and
    "probabilities" (a float array). All candidates of all pictures go through the model as one batch.
    ImageError (naming the picture) for one without ink or with too much to be a line of digits."""
    check_shape(classifier)
    pages = [page(image, name) for name, image in pictures]
    return _readings(classifier, pages)


def _readings(classifier: Classifier, pages: list[Page]) -> list[dict]:
    images = [image for found in pages for image in found.images]
    if not images:
        return []
    probabilities = classifier.probabilities(np.stack(images))
    reject_below = getattr(classifier, "reject_below", None)
    readings, start = [], 0
    for found in pages:
        rows = probabilities[start : start + len(found.images)]
        start += len(found.images)
        chosen = chosen_spans(found, rows)
        if len(chosen) > MAX_DIGITS:
            raise ImageError(
                f"{found.name}: {len(chosen)} digits found, more than the {MAX_DIGITS} read from one picture; crop "
                f"it to one line of at most {MAX_DIGITS} digits"
            )
        digits = []
        for k in chosen:
            guess = judge(answer(rows[k], classifier.class_names), reject_below)
            digits.append({"box": list(found.boxes[k])} | guess | {"probabilities": rows[k], "image": found.images[k]})
        readings.append(_whole(digits))
    return readings


def _whole(digits: list[dict]) -> dict:
    """The number from its digits, and whether the picture holds no digit at all."""
    number = "".join("?" if digit["not_a_digit"] else digit["label"] for digit in digits)
    rejected = all(digit["not_a_digit"] for digit in digits)
    reasons = {digit["reason"] for digit in digits}
    reason = (reasons.pop() if len(reasons) == 1 else "no digit read") if rejected else None
    return {"number": number, "not_a_digit": rejected, "reason": reason, "digits": digits}


def plain(reading: dict) -> dict:
    """A reading made JSON-serialisable: each digit's probabilities a list of floats, its image left out."""
    digits = [
        {key: value for key, value in digit.items() if key != "image"}
        | {"probabilities": [float(p) for p in digit["probabilities"]]}
        for digit in reading["digits"]
    ]
    return reading | {"digits": digits}


def read_number(classifier: Classifier, image: Image.Image, name: str) -> dict:
    """The number in one picture: the JSON-serialisable reading described in this module's docstring."""
    return plain(read_images(classifier, [(name, image)])[0])


def read_files(classifier: Classifier, sources: Iterable[Source], show_dir: str | Path | None = None) -> list[dict]:
    """`digitlab read`'s work: per source, in order, {"file": its name} with read_number()'s fields, or with
    "error": one line naming the file. With `show_dir`, each digit's 28x28 image is written there as a PNG
    (its path under the digit's "preprocessed"), numbered by file and position."""
    check_shape(classifier)
    folder = show_folder(show_dir)
    results: list[dict] = []
    pages: list[tuple[int, Page]] = []
    for source in sources:
        name = source[0] if isinstance(source, tuple) else str(source)
        try:
            image = decode(source[1], name) if isinstance(source, tuple) else load_file(source)
            pages.append((len(results), page(image, name)))
        except ImageError as error:
            results.append({"file": name, "error": str(error)})
            continue
        results.append({"file": name})
    for start in range(0, len(pages), 64):  # a bounded batch of pictures at a time: bounded memory
        batch = pages[start : start + 64]
        try:
            readings = _readings(classifier, [found for _, found in batch])
        except ImageError:  # too many digits on one: read them one by one to tell which
            readings = []
            for _, found in batch:
                try:
                    readings += _readings(classifier, [found])
                except ImageError as error:
                    readings.append({"error": str(error)})
        for (index, _), reading in zip(batch, readings):
            if "error" in reading:
                results[index] |= reading
                continue
            if folder is not None:
                for position, digit in enumerate(reading["digits"]):
                    digit["preprocessed"] = str(
                        show(folder, index, f"{Path(results[index]['file']).stem}-{position + 1}.png", digit["image"])
                    )
            results[index] |= plain(reading)
    return results
