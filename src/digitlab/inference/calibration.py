"""Honest confidence: a run's probabilities calibrated on its validation split, and the confidence below which an
answer is "not a digit", stored with the run (CALIBRATION) and applied by every engine (classifier.py, export.py).

A model trained with label smoothing says about 90% of everything; temperature scaling (Guo et al. 2017,
"On Calibration of Modern Neural Networks") divides its logits by one number T, fitted to minimise the negative
log-likelihood on held-out digits. It changes no answer (the arg max of logits / T is the arg max of the logits),
only how sure each answer claims to be. T and the threshold are fitted on the run's validation split, rebuilt
exactly as training drew it; the test set is never used for fitting (`digitlab evaluate` only reports on it).

Holds the file's name and record (CALIBRATION, Calibration, read_calibration, write_calibration, for_weights), the
fit (fit_temperature, reject_threshold), the measures (expected_calibration_error, reliability_diagram), a model's
logits over uint8 images (logits_of), and the whole step, `digitlab calibrate` (calibrate_run).

Nothing here imports PyTorch, scipy or matplotlib at module level: classifier.py reads calibration.json for
an .onnx model too, which must run without them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np

from digitlab.errors import RunError
from digitlab.store.files import atomic_write, write_json

CALIBRATION = "calibration.json"  # in the run directory, beside the weights it was fitted for
BINS = 15  # equal-width confidence bins of the expected calibration error, as Guo et al. report it
REJECT_SHARE = 0.005  # the share of validation digits the threshold calls "not a digit" (the least confident)
BATCH = 2000  # images per forward pass, as evaluate's


@dataclasses.dataclass(frozen=True)
class Calibration:
    """temperature: divide the logits by it before the softmax; reject_below: a calibrated top probability below
    it is "not a digit" (None: no threshold known). The other fields record what it was fitted on, in facts that
    do not depend on how the command was called (no paths, no times), so that fitting again gives the same file."""

    temperature: float
    reject_below: float | None = None
    method: str = "temperature scaling (minimum NLL)"
    split: str = "validation"  # never "test"
    images: int = 0  # validation digits fitted on
    seed: int = 0  # the run's seed, which drew the validation split
    dataset: str = ""  # data.known's name of the data, or "custom"
    train_images_sha256: str = ""  # the training file the split was drawn from
    weights: str = ""  # the weights file calibrated (a run with a weight average has two)
    weights_sha256: str = ""  # its bytes: a calibration of other weights is stale
    accuracy: float | None = None  # on the validation split
    nll_before: float | None = None
    nll_after: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    bins: int = BINS
    reject_share: float = REJECT_SHARE  # the share asked for
    rejected: float | None = None  # the share of validation digits below reject_below


def read_calibration(run_dir: str | Path) -> Calibration | None:
    """The run's calibration.json, or None when it has none; RunError, one line, for a damaged one."""
    path = Path(run_dir) / CALIBRATION
    if not path.is_file():
        return None
    fields = {field.name for field in dataclasses.fields(Calibration)}
    try:
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        calibration = Calibration(**{key: value for key, value in values.items() if key in fields})
        temperature, threshold = calibration.temperature, calibration.reject_below
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
            raise ValueError(f"temperature {temperature!r} is not a positive number")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1
        ):
            raise ValueError(f"reject_below {threshold!r} is neither null nor a probability")
    except (OSError, TypeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise RunError(
            f"{path} is damaged ({str(error).splitlines()[0]}); fit it again with 'digitlab calibrate {run_dir}' "
            f"or delete it"
        ) from None
    return calibration


def write_calibration(run_dir: str | Path, calibration: Calibration) -> Path:
    """Write calibration.json atomically (a reader sees the old file or the new one); its path."""
    path = Path(run_dir) / CALIBRATION
    write_json(path, dataclasses.asdict(calibration))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def for_weights(run_dir: str | Path, weights: str) -> Calibration | None:
    """The run's calibration if it was fitted for the weights file `weights` (load_model's info["weights"]); None
    when the run has none, or has one for its other weights (--weights raw of a run calibrated on its average: those
    are answered uncalibrated). RunError when the weights changed since it was fitted: its T would be a guess."""
    calibration = read_calibration(run_dir)
    if calibration is None or calibration.weights != weights:
        return None
    if calibration.weights_sha256 != sha256_of(Path(run_dir) / weights):
        raise RunError(
            f"{Path(run_dir) / CALIBRATION} was fitted on other weights than {weights} holds now; fit it again "
            f"with 'digitlab calibrate {run_dir}'"
        )
    return calibration


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) along the classes, in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean -log softmax(logits / temperature)[label], in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    top = scaled.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(scaled - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(log_sum - scaled[np.arange(len(scaled)), np.asarray(labels, dtype=np.int64)]))


def fit_temperature(logits, labels) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T): a one-dimensional bounded search (Brent) on log T in
    [1/100, 100], in float64. The NLL is convex in 1/T, so it has one minimum and the search finds it."""
    from scipy.optimize import minimize_scalar  # here: the ONNX path reads calibration.json without scipy

    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) == 0 or len(labels) != len(logits):
        raise ValueError(f"fit_temperature needs logits (N, classes) and N labels, got {logits.shape}, {labels.shape}")
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, math.exp(log_t)),
        bounds=(math.log(0.01), math.log(100.0)),
        method="bounded",
        options={"xatol": 1e-7},
    )
    return float(math.exp(found.x))


def expected_calibration_error(probabilities, labels, bins: int = BINS) -> float:
    """Top-label ECE: the confidences (top probabilities) fall in `bins` equal-width bins (lo, hi] of [0, 1]; the
    mean over the digits of |accuracy - mean confidence| of each one's bin. 0 for a perfectly calibrated model."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence, labels = probabilities.max(axis=1), np.asarray(labels, dtype=np.int64)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    gap = np.bincount(which, weights=correct - confidence, minlength=bins)  # per bin: sum(correct - confidence)
    return float(np.abs(gap).sum() / max(len(labels), 1))


def reject_threshold(confidences, share: float = REJECT_SHARE) -> float | None:
    """The calibrated top probability below which an answer is "not a digit": the validation digits' confidences
    sorted, the one at index floor(share * N), so that at most `share` of the validation digits (the least sure,
    which hold most of its mistakes) fall strictly below it. None for share 0 (reject nothing)."""
    confidences = np.sort(np.asarray(confidences, dtype=np.float64))
    if not 0 <= share < 1 or len(confidences) == 0:
        raise ValueError(f"the rejected share must be in [0, 1) of some digits, got {share} of {len(confidences)}")
    if share == 0:
        return None
    return float(confidences[int(math.floor(share * len(confidences)))])


def reliability_diagram(probabilities, labels, path: str | Path, title: str, bins: int = BINS) -> None:
    """A PNG at `path` (written atomically): each bin's accuracy (filled) and mean confidence (outlined), the
    diagonal a calibrated model follows, the bins' digit counts below (log scale), and the ECE in the title."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: evaluation runs on servers and in CI
    import matplotlib.pyplot as plt

    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence, labels = probabilities.max(axis=1), np.asarray(labels, dtype=np.int64)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    filled = count > 0
    accuracy = np.bincount(which, weights=correct, minlength=bins)[filled] / count[filled]
    mean_confidence = np.bincount(which, weights=confidence, minlength=bins)[filled] / count[filled]
    edges = np.linspace(0, 1, bins + 1)
    centres, width = (edges[:-1] + edges[1:])[filled] / 2, 1 / bins
    ece = expected_calibration_error(probabilities, labels, bins)
    figure, (axis, counts) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    try:
        axis.plot([0, 1], [0, 1], color="0.5", linestyle="--", label="calibrated")
        axis.bar(centres, accuracy, width=width * 0.9, color="tab:blue", label="accuracy of the bin")
        axis.bar(centres, mean_confidence, width=width * 0.9, fill=False, edgecolor="tab:red",
                 label="its mean confidence")  # fmt: skip
        axis.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
        axis.set_title(f"{title}\nECE {ece:.2%} ({bins} bins, {len(labels)} digits)", fontsize=10)
        axis.legend(loc="upper left", fontsize=8)
        counts.bar(centres, count[filled], width=width * 0.9, color="0.4")
        counts.set_yscale("log")
        counts.set(xlabel="confidence (top probability)", ylabel="digits")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(figure)  # pyplot keeps every open figure alive otherwise
    atomic_write(Path(path), buffer.getvalue())


def logits_of(model, images, batch: int = BATCH):
    """A model's float32 logits (N, classes) on the CPU for uint8 images (N, H, W), normalised as training did."""
    import torch

    from digitlab.data.dataset import normalize

    device = next(model.parameters()).device
    parts = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            parts.append(model(normalize(images[start : start + batch]).to(device)).float().cpu())
    return torch.cat(parts) if parts else torch.zeros((0, 0))


def _check_init_held_out(run_dir: Path, config, rundir) -> None:
    """A fine-tuned run (--init) whose initial run drew another validation split has learnt from some of its
    own validation digits through the initial weights; calibrating there would flatter it: RunError, one line."""
    init = getattr(config, "init", None)
    if not init or not (Path(init) / rundir.CONFIG).is_file():
        return  # not fine-tuned, or its initial run is gone and cannot be checked
    first = rundir.load_config(Path(init))
    drawn = ("val_size", "seed", "train_limit", "dataset")
    if any(getattr(first, name) != getattr(config, name) for name in drawn):
        raise RunError(
            f"{run_dir} was fine-tuned from {init}, which held out other validation digits (its --val-size, "
            f"--seed, --train-limit or --dataset differ), so its validation split is partly trained on; "
            f"fine-tune with the initial run's settings, then calibrate"
        )


def calibrate_run(
    run_dir: str | Path, data_dir: str | None = None, weights: str = "auto", share: float = REJECT_SHARE
) -> Calibration:
    """`digitlab calibrate`: the run's model on its validation split (rebuilt as training drew it: the same data,
    limits, --val-size and seed), its temperature and threshold fitted there, written to RUN/calibration.json."""
    from digitlab.data.dataset import prepare
    from digitlab.data.matching import matching_test_data
    from digitlab.inference.load import load_model
    from digitlab.store import rundir

    run_dir = Path(run_dir)
    model, info = load_model(run_dir, weights=weights)
    config = rundir.load_config(run_dir)
    if not config.val_size:
        raise RunError(
            f"{run_dir} was trained without a validation split, and calibrating on the test set would make its "
            f"test figures a fit: train with --val-size (e.g. --val-size 5000), then calibrate that run"
        )
    _check_init_held_out(run_dir, config, rundir)
    dataset = matching_test_data(data_dir, info)
    split = prepare(dataset, config.val_size, config.train_limit, 0, config.seed)
    logits = logits_of(model, split.val_images).numpy().astype(np.float64)
    labels = split.val_labels.numpy()
    temperature = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, temperature)
    threshold = reject_threshold(after.max(axis=1), share)
    train_file = next((name for name in dataset.checksums if "train" in name and "images" in name), None)
    calibration = Calibration(
        temperature=temperature,
        reject_below=threshold,
        images=len(labels),
        seed=config.seed,
        dataset=dataset.name,
        train_images_sha256=dataset.checksums.get(train_file, "") if train_file else "",
        weights=info["weights"],
        weights_sha256=sha256_of(run_dir / info["weights"]),
        accuracy=float((logits.argmax(axis=1) == labels).mean()),
        nll_before=negative_log_likelihood(logits, labels),
        nll_after=negative_log_likelihood(logits, labels, temperature),
        ece_before=expected_calibration_error(before, labels),
        ece_after=expected_calibration_error(after, labels),
        reject_share=share,
        rejected=float((after.max(axis=1) < threshold).mean()) if threshold is not None else 0.0,
    )
    try:
        write_calibration(run_dir, calibration)
    except OSError as error:
        raise RunError(
            f"cannot write {run_dir / CALIBRATION}: {error.strerror or error}; make {run_dir} writable "
            f"(chmod u+w {run_dir})"
        ) from None
    return calibration
