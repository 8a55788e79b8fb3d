"""An evaluation a careful reader can trust: the test accuracy with its confidence interval, per-class precision
and recall, the confusion matrix as a figure, a grid of the misclassified test digits, and how honest the model's
confidence is: the expected calibration error with the run's calibration and without it, and a reliability diagram.

`assess` computes all of it as one plain (JSON-serialisable) dict and writes, into the run directory,
`evaluation/confusion.png`, `evaluation/misclassified.png` (only when the model made mistakes),
`evaluation/reliability.png` (when given the logits) and
`evaluation/evaluation.json` (the dict; written last, so that it only ever names figures that exist). Every file is
written atomically (store.files.atomic_write): a reader sees the old file or the whole new one, never a torn one.
`assess_run` is `digitlab evaluate`: a run's model on its matching test data, then `assess`. The test set only
reports the calibration (calibration.py fits it on the validation split).
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen: evaluation runs on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.stats import binomtest  # noqa: E402

from digitlab.console import class_name  # noqa: E402
from digitlab.data.matching import matching_test_data  # noqa: E402
from digitlab.errors import RunError  # noqa: E402
from digitlab.inference import calibration as calibrating  # noqa: E402
from digitlab.inference.load import load_model  # noqa: E402
from digitlab.store.files import atomic_write, remove_temporaries, write_json  # noqa: E402
from digitlab.training.evaluate import confusion_matrix  # noqa: E402

EVALUATION = "evaluation"  # the folder in the run directory that holds what `digitlab evaluate` writes
CONFUSION = "confusion.png"
MISCLASSIFIED = "misclassified.png"
RELIABILITY = "reliability.png"
RECORD = "evaluation.json"

# Our method name -> (scipy's name for it, the name people know it by). scipy calls Clopper-Pearson "exact".
METHODS = {"wilson": ("wilson", "Wilson"), "clopper-pearson": ("exact", "Clopper-Pearson")}


def accuracy_interval(
    correct: int, total: int, confidence: float = 0.95, method: str = "wilson"
) -> tuple[float, float]:
    """The confidence interval of an accuracy measured as `correct` of `total` independent test images.

    Wilson's score interval is the default: it keeps close to its nominal coverage even near 100% accuracy, where
    the textbook normal approximation collapses to a zero-width interval. Clopper-Pearson ("exact") is the
    conservative alternative. scipy computes both, so that no hand-written formula can drift from the published one.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; choose one of {', '.join(METHODS)}")
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"an accuracy needs 0 <= correct <= total and total > 0, got {correct} of {total}")
    if not 0 < confidence < 1:
        raise ValueError(f"the confidence level must lie between 0 and 1, got {confidence}")
    interval = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method=METHODS[method][0])
    return float(interval.low), float(interval.high)  # numpy floats would not pass through json.dumps


def per_class(matrix, class_names: list[str] | None = None) -> list[dict]:
    """Precision, recall and support of each class from a confusion matrix (rows: true class, columns: predicted).

    A ratio whose denominator is zero is undefined and reported as None (JSON null), not 0 or NaN: a class the
    model never predicted has no precision, and a class absent from the test data has no recall. Writing 0 would
    claim a measurement that was never made.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    hits, actual, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    return [
        {
            "class": label,
            "name": class_names[label] if class_names and label < len(class_names) else None,
            "precision": float(hits[label] / predicted[label]) if predicted[label] else None,
            "recall": float(hits[label] / actual[label]) if actual[label] else None,
            "support": int(actual[label]),  # test images of this class
            "predicted": int(predicted[label]),  # test images the model put in this class
        }
        for label in range(len(matrix))
    ]


def _named(class_names: list[str] | None) -> bool:
    """Whether the dataset's class names say more than the label numbers (MNIST's "0".."9" do not)."""
    return bool(class_names) and list(class_names) != [str(label) for label in range(len(class_names))]


def _save(figure, path: Path) -> None:
    """Render the figure to PNG bytes in memory, then write them atomically (temporary file, then rename)."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(figure)  # pyplot keeps every open figure alive otherwise
    atomic_write(Path(path), buffer.getvalue())


def confusion_figure(matrix, class_names: list[str] | None, path: Path) -> None:
    """A heat map of the confusion matrix with the count in every cell, rows true and columns predicted.

    The colour is the share of the true class's images rather than the raw count: on a good model the diagonal's
    counts dwarf every mistake, and a count scale would paint all the mistakes the same white.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    size = len(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = max(5.0, 0.5 * size + 2.5)
    figure, axis = plt.subplots(figsize=(side + 1.2, side))
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    font = 9 if size <= 10 else max(4, 9 - (size - 10) // 4)
    for true_class in range(size):
        for guess in range(size):
            count = int(matrix[true_class, guess])
            colour = "white" if share[true_class, guess] > 0.55 else ("black" if count else "0.7")
            axis.text(guess, true_class, str(count), ha="center", va="center", fontsize=font, color=colour)
    labels = [class_name(label, class_names) for label in range(size)]
    named = _named(class_names)
    axis.set_xticks(range(size), labels, rotation=45 if named else 0, ha="right" if named else "center")
    axis.set_yticks(range(size), labels)
    axis.set(xlabel="predicted class", ylabel="true class")
    axis.set_title(f"Confusion matrix: {int(matrix.sum())} test images, {int(np.trace(matrix))} correct")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class's images")
    figure.tight_layout()
    _save(figure, path)


def misclassified_grid(
    images_uint8, true_labels, predicted_labels, class_names: list[str] | None, path: Path, limit: int = 100
) -> int:
    """A PNG grid of up to `limit` misclassified test digits (the first by test index), each titled with its true
    and predicted class and marked with its test index so that it can be found again. Returns how many it drew;
    with no mistakes it writes nothing and returns 0 (an empty figure would only look like a failure)."""
    images = np.asarray(images_uint8)
    truth, guesses = np.asarray(true_labels).astype(np.int64), np.asarray(predicted_labels).astype(np.int64)
    wrong = np.flatnonzero(truth != guesses)
    if len(wrong) == 0 or limit <= 0:
        return 0
    shown = wrong[:limit]
    named = _named(class_names)
    height, width = images.shape[1:]
    columns = min(10, len(shown))
    rows = math.ceil(len(shown) / columns)
    # One canvas of all the digits in a single axes, and plain text around them: a grid of 100 separate axes takes
    # seconds to draw. Sizes are set in inches and converted to canvas pixels, so that text fits any image size.
    inches = 1.1 / max(height, width)  # per pixel: a digit is drawn 1.1 inches across
    above = math.ceil((0.06 + 0.12 * (2 if named else 1)) / inches)  # names take two title lines: "true X", "pred Y"
    below, side = math.ceil(0.16 / inches), math.ceil((0.3 if named else 0.12) / inches)
    cell_height, cell_width = above + height + below, side + width + side
    canvas = np.full((rows * cell_height, columns * cell_width), np.nan)  # NaN: the grey between the digits
    header = 0.4  # inches, for the figure's title
    drawn_height = rows * cell_height * inches
    figure = plt.figure(figsize=(columns * cell_width * inches, drawn_height + header))
    axis = figure.add_axes((0, 0, 1, drawn_height / (drawn_height + header)))
    separator = "\n" if named else " / "
    for slot, index in enumerate(shown):
        row, column = divmod(slot, columns)
        top, left = row * cell_height + above, column * cell_width + side
        canvas[top : top + height, left : left + width] = images[index]
        centre = left + (width - 1) / 2
        true_name, guess_name = class_name(truth[index], class_names), class_name(guesses[index], class_names)
        axis.text(
            centre, top - 1, f"true {true_name}{separator}pred {guess_name}", ha="center", va="bottom", fontsize=7
        )
        # The test index, so that a reader can find the digit again.
        axis.text(centre, top + height, f"#{index}", ha="center", va="top", fontsize=6, color="0.4")
    colours = plt.get_cmap("gray_r").with_extremes(bad="0.9")  # dark ink on white, as digits are written
    axis.imshow(canvas, cmap=colours, vmin=0, vmax=255, interpolation="nearest")
    axis.set_axis_off()
    which = f"the first {len(shown)} by test index" if len(shown) < len(wrong) else "all of them"
    figure.suptitle(
        f"{len(wrong)} misclassified test digits ({which})", fontsize=10, y=1 - 0.1 / (drawn_height + header)
    )
    _save(figure, path)
    return len(shown)


def assess(
    run_dir: Path,
    images: torch.Tensor,
    labels: torch.Tensor,
    predictions: torch.Tensor,
    loss: float,
    num_classes: int,
    class_names: list[str] | None = None,
    data: dict | None = None,
    confidence: float = 0.95,
    method: str = "wilson",
    limit: int = 100,
    logits: torch.Tensor | None = None,
    calibration: calibrating.Calibration | None = None,
) -> dict:
    """The whole evaluation of a run's predictions on the test images as a plain dict, with its figures and the
    dict itself written into `run_dir`/evaluation. `data` says which test data it was (recorded as given).
    logits: the model's on the test images, to measure its calibration (`calibration`'s; None: T 1) and draw the
    reliability diagram. RunError when the folder cannot be written; whatever this call had written is then
    removed."""
    matrix = confusion_matrix(labels.long().cpu(), predictions.long().cpu(), num_classes).numpy()
    total, correct = len(labels), int(np.trace(matrix))
    low, high = accuracy_interval(correct, total, confidence, method)
    folder = Path(run_dir) / EVALUATION
    record = {
        "run_dir": str(run_dir),
        "data": data,
        "images": total,
        "correct": correct,
        "errors": total - correct,
        "accuracy": correct / total,  # from the counts, exact, not a float32 mean
        "interval": {"low": low, "high": high, "confidence": confidence, "method": method},
        "loss": float(loss),
        "per_class": per_class(matrix, class_names),
        "confusion": matrix.tolist(),
        "confusion_axes": "rows: true class, columns: predicted class",
        "class_names": list(class_names) if class_names else None,
        "misclassified_shown": 0,
        "calibration": calibration_record(logits, labels, calibration) if logits is not None else None,
        "files": {},
    }
    created = not folder.exists()
    written: list[Path] = []
    try:
        folder.mkdir(exist_ok=True)
        remove_temporaries(folder)  # left by an earlier evaluate that was killed mid-write
        confusion_figure(matrix, class_names, folder / CONFUSION)
        written.append(folder / CONFUSION)
        drawn = misclassified_grid(images, labels, predictions, class_names, folder / MISCLASSIFIED, limit)
        if drawn:
            written.append(folder / MISCLASSIFIED)
        else:  # an earlier evaluation's grid would show mistakes this one did not make
            (folder / MISCLASSIFIED).unlink(missing_ok=True)
        record["misclassified_shown"] = drawn
        if logits is not None:
            temperature = record["calibration"]["temperature"]
            title = f"Test set, temperature {temperature:.3g}" if calibration else "Test set, uncalibrated (T = 1)"
            calibrating.reliability_diagram(
                calibrating.softmax(logits.numpy(), temperature), labels.numpy(), folder / RELIABILITY, title
            )
            written.append(folder / RELIABILITY)
        else:  # an earlier evaluation's diagram would not describe this one
            (folder / RELIABILITY).unlink(missing_ok=True)
        record["files"] = {
            "record": str(folder / RECORD),
            "confusion": str(folder / CONFUSION),
            "misclassified": str(folder / MISCLASSIFIED) if drawn else None,
            "reliability": str(folder / RELIABILITY) if logits is not None else None,
        }
        write_json(folder / RECORD, record)
    except OSError as error:
        for path in written:  # a figure without the record that describes it is a partial evaluation
            with contextlib.suppress(OSError):
                path.unlink()
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise RunError(
            f"cannot write the evaluation into {folder}: {error.strerror or error}; make {run_dir} writable "
            f"(chmod u+w {run_dir}), or evaluate a copy of the run (cp -r {run_dir} COPY)"
        ) from None
    return record


def calibration_record(logits: torch.Tensor, labels: torch.Tensor, calibration: calibrating.Calibration | None) -> dict:
    """The test set's expected calibration error with the run's temperature and without it (T 1), and the share
    of its digits the run's "not a digit" threshold rejects."""
    temperature = calibration.temperature if calibration else 1.0
    threshold = calibration.reject_below if calibration else None
    logits, truth = logits.double().numpy(), labels.numpy()
    calibrated = calibrating.softmax(logits, temperature)
    return {
        "calibrated": calibration is not None,  # False: the run has no calibration.json for these weights
        "temperature": temperature,
        "fitted_on": f"{calibration.images} {calibration.split} digits" if calibration else None,
        "ece": calibrating.expected_calibration_error(calibrated, truth),
        "ece_uncalibrated": calibrating.expected_calibration_error(calibrating.softmax(logits), truth),
        "bins": calibration.bins if calibration else 15,
        "reject_below": threshold,
        "rejected": float((calibrated.max(axis=1) < threshold).mean()) if threshold is not None else None,
    }


def assess_run(run_dir: Path, data_dir: str | None, weights: str = "auto") -> dict:
    """`digitlab evaluate`: a finished run's model on the test data that matches it (data.matching), its logits
    computed once (calibration.logits_of, evaluate's batches), its loss as training's, then `assess`."""
    model, info = load_model(run_dir, weights=weights)
    calibration = calibrating.for_weights(run_dir, info["weights"])
    dataset = matching_test_data(data_dir, info)
    logits = calibrating.logits_of(model, dataset.test_images)
    loss = F.cross_entropy(logits, dataset.test_labels).item()
    return assess(
        run_dir, dataset.test_images, dataset.test_labels, logits.argmax(dim=1), loss,
        info["num_classes"], class_names=info.get("class_names"),
        data={"source": dataset.source, "dataset": dataset.name, "weights": info["weights"]},
        logits=logits, calibration=calibration,
    )  # fmt: skip
