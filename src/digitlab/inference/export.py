"""`digitlab export`: a finished run's model as one self-contained ONNX file, checked against PyTorch first.

The graph takes float32 images (N, H, W) of raw pixel values 0..255 and applies MNIST's normalisation
itself (digitlab.data.dataset.normalize, traced), so that a runtime needs nothing from digitlab; it returns
"logits" (N, classes), already divided by the run's calibrated temperature (calibration.py; 1 for a run without
calibration.json), so that any runtime's softmax is calibrated; N is dynamic. What the file is (digitlab's
format, image shape, classes and their names, the run and weights it came from, its temperature and "not a digit"
threshold, digitlab's version) is kept in its metadata_props, which digitlab.inference.onnx_model reads back
(classifier.OnnxClassifier runs the file); onnx_model also checks that
the export extra is installed.

The exporter is torch.onnx's torch.export-based one (dynamo=True): the TorchScript one is deprecated since
torch 2.9 and will be removed. It handles every model of digitlab.models.MODELS, the recurrent ones as
ONNX LSTM/GRU nodes; the BLSTM's "paper" head exports as written (its one hand-written reverse step becomes
a few matrix products), so it needs no detour through the plain nn.LSTM path. Tracing an LSTM or GRU takes
some seconds (the exporter traces through their step-by-step decompositions), a one-off cost.

Nothing is left half-written: the file is written under a temporary name in the destination folder, run by
onnxruntime on test images at batch sizes VERIFY_BATCHES, compared with PyTorch's logits / T, and renamed into
place only when every difference is within TOLERANCE; otherwise it is removed and ExportError says why.

Holds the checks' limits (TOLERANCE, VERIFY_BATCHES), the file's default name (DEFAULT_NAME), ExportError, the
model with the normalisation inside (RawPixelModel), the export (export_onnx), the check against PyTorch
(compare) and the images it runs on (verification_images).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

import digitlab
from digitlab.data.dataset import MNIST_MEAN, MNIST_STD, load, normalize
from digitlab.data.fetch import cache_dir, find_files
from digitlab.errors import ConfigError, DigitlabError, first_line
from digitlab.inference.calibration import for_weights
from digitlab.inference.classifier import OnnxClassifier
from digitlab.inference.load import load_model
from digitlab.inference.onnx_model import (
    FORMAT_KEY,
    FORMAT_VERSION,
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    REJECT_KEY,
    TEMPERATURE_KEY,
    require,
)
from digitlab.store import rundir
from digitlab.store.files import fsync_folder

TOLERANCE = 1e-5  # the largest |onnxruntime - PyTorch| logit difference accepted
VERIFY_BATCHES = (1, 64)  # batch sizes run through both, each on the first that many test images
DEFAULT_NAME = "model.onnx"  # in the run directory, unless --out says otherwise


class ExportError(DigitlabError, RuntimeError):
    """An export that failed, or whose file does not compute what the PyTorch model computes; nothing was kept."""

    exit_code = 1
    http_status = 500


class RawPixelModel(torch.nn.Module):
    """model(normalize(images)) / temperature for float32 images of raw pixel values 0..255: the normalisation
    travels in the graph, computed by the very function training and `predict` use, and so does the calibration
    (one multiplication by 1/T; T 1 multiplies by nothing)."""

    def __init__(self, model: torch.nn.Module, temperature: float = 1.0):
        super().__init__()
        self.model = model
        self.temperature = float(temperature)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.model(normalize(images))
        return logits if self.temperature == 1.0 else logits * (1.0 / self.temperature)


def export_onnx(
    run_dir: str | Path,
    out_path: str | Path | None = None,
    weights: str = "auto",
    opset: int = OPSET,
    images: np.ndarray | None = None,
) -> dict:
    """Export a finished run's model to `out_path` (default RUN_DIR/model.onnx) and verify it; return what was
    written: path, opset, bytes, max_difference, batch_sizes, tolerance, images (where the test images came
    from), model, weights and seconds.

    images: uint8 (N, H, W) to verify on; by default the run's own test images when its data is on this
    machine (its --data-dir, or the cache), else a fixed pseudo-random set.
    """
    require("ONNX export")
    import onnx

    run_dir = Path(run_dir)
    out = Path(out_path) if out_path is not None else run_dir / DEFAULT_NAME
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; pass a file name to --out, such as {out / DEFAULT_NAME}")
    if opset <= 0:
        raise ConfigError(f"--opset must be positive, got {opset} (default {OPSET})")
    started = time.perf_counter()
    model, info = load_model(run_dir, weights=weights)
    config = rundir.load_config(run_dir)
    shape = tuple(info["image_shape"])
    calibration = for_weights(run_dir, info["weights"])
    temperature = calibration.temperature if calibration else 1.0
    reject_below = calibration.reject_below if calibration else None
    wrapped = RawPixelModel(model, temperature).eval()

    program = _export(wrapped, shape, opset, f"the {config.model} model of {run_dir}")
    proto = program.model_proto
    written = next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter converts to another opset where it can, and may silently keep its own
        raise ConfigError(
            f"torch.onnx could not write the {config.model} model in opset {opset} (it wrote {written}); "
            f"pass --opset {OPSET} (the default) or another that it supports"
        )
    metadata = {
        FORMAT_KEY: FORMAT_VERSION,
        "digitlab_version": digitlab.__version__,
        "model": config.model,
        "image_shape": json.dumps(list(shape)),
        "num_classes": str(info["num_classes"]),
        "class_names": json.dumps(info.get("class_names")),
        "dataset": str(info.get("dataset", "")),
        "source_run": str(run_dir.resolve()),
        "weights": info["weights"],
        "weights_sha256": hashlib.sha256((run_dir / info["weights"]).read_bytes()).hexdigest(),
        "input": f"{INPUT_NAME}: float32 (N, {shape[0]}, {shape[1]}), raw pixel values 0..255",
        "output": f"{OUTPUT_NAME}: float32 (N, {info['num_classes']}), logits already divided by the temperature",
        TEMPERATURE_KEY: repr(temperature),
        REJECT_KEY: json.dumps(reject_below),
        "normalization": json.dumps({"mean": MNIST_MEAN, "std": MNIST_STD, "scale": 255.0}),
        "opset": str(opset),
        "torch": torch.__version__,
    }
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = f"digitlab {config.model} classifier exported from {run_dir} ({info['weights']})"
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the ONNX graph exported from {run_dir} is invalid: {first_line(error, 300)}") from None
    data = proto.SerializeToString()

    if images is None:
        images, source = verification_images(config.data_dir, shape, max(VERIFY_BATCHES))
    else:
        images, source = np.asarray(images, dtype=np.uint8), "the images given"
    if images.ndim != 3 or tuple(images.shape[1:]) != shape or len(images) == 0:
        raise ConfigError(f"images to verify on must be (N, {shape[0]}, {shape[1]}), got {images.shape}")

    with _temporary_beside(out) as temporary:
        temporary.write_bytes(data)
        differences = compare(wrapped, temporary, images)
        worst = max(differences.values())
        if not worst <= TOLERANCE:  # also catches NaN
            details = ", ".join(f"batch {size}: {value:.3g}" for size, value in differences.items())
            raise ExportError(
                f"the ONNX export of {run_dir} does not compute what PyTorch does: logits differ by up to "
                f"{worst:.3g} (limit {TOLERANCE:g}; {details}); nothing was written to {out}"
            )
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, out)
    fsync_folder(out.parent)
    return {
        "path": str(out),
        "opset": opset,
        "bytes": len(data),
        "max_difference": worst,
        "differences": {str(size): value for size, value in differences.items()},
        "batch_sizes": list(differences),
        "tolerance": TOLERANCE,
        "images": source,
        "model": config.model,
        "weights": info["weights"],
        "temperature": temperature,
        "reject_below": reject_below,
        "seconds": time.perf_counter() - started,
    }


def _export(module: torch.nn.Module, shape: tuple[int, int], opset: int, what: str):
    """torch.onnx.export of `module` with a dynamic batch dimension, its progress notes and warnings muted."""
    example = torch.zeros(2, *shape)  # batch 2: a batch of 1 would let torch.export specialise the dimension
    batch = torch.export.Dim("batch", min=1)
    # e.g. "torchvision is not installed. Skipping torchvision::nms", or that another opset is converted to
    loggers = {name: logging.getLogger(name) for name in ("torch.onnx", "onnxscript")}
    levels = {name: logger.level for name, logger in loggers.items()}
    for logger in loggers.values():
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"images": {0: batch}},
                opset_version=opset,
                verbose=False,
            )
    except Exception as error:  # the exporter raises many kinds; all mean the same to the user
        raise ExportError(f"torch.onnx could not export {what}: {first_line(error, 300)}") from None
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


def compare(model: torch.nn.Module, path: Path, images: np.ndarray) -> dict[int, float]:
    """Batch size -> the largest |onnxruntime - PyTorch| logit of the exported file at `path` on the first
    that many `images` (uint8 (N, H, W)), for each of VERIFY_BATCHES (capped at N). `model` is what was exported
    (a RawPixelModel, with its temperature), or a bare model that takes normalised images."""
    try:
        classifier = OnnxClassifier(path)
    except DigitlabError as error:
        raise ExportError(f"onnxruntime cannot run the exported model: {error}") from None
    differences = {}
    for size in dict.fromkeys(min(size, len(images)) for size in VERIFY_BATCHES):
        batch = images[:size]
        with torch.inference_mode():  # like with like: the exported module takes raw pixels, a bare one normalised
            pixels = torch.from_numpy(batch)
            raw = isinstance(model, RawPixelModel)
            expected = (model(pixels.float()) if raw else model(normalize(pixels))).float().numpy()
        got = classifier.logits(batch)
        differences[size] = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    return differences


def verification_images(data_dir: str | None, shape: tuple[int, int], count: int) -> tuple[np.ndarray, str]:
    """`count` uint8 images to verify an export on, and where they came from: the first test images of the
    run's data folder (else the MNIST cache) when it is on this machine and of the model's image size (never
    fetched), else a fixed pseudo-random set."""
    for folder in (Path(data_dir).expanduser() if data_dir else None, cache_dir()):
        if folder is None or find_files(folder) is None:
            continue
        try:
            test_images = load(folder, log=lambda *args: None).test_images
        except DigitlabError:
            continue
        if tuple(test_images.shape[1:]) == shape:
            chosen = test_images[:count].numpy()
            return np.resize(chosen, (count, *shape)), f"{len(chosen)} test images of {folder}"
    random = np.random.default_rng(0).integers(0, 256, size=(count, *shape), dtype=np.uint8)
    return random, f"{count} pseudo-random images (the run's test data is not on this machine)"


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A fresh temporary path in `path`'s folder (".<name>.<random>.tmp", like store.files.atomic_write),
    removed on leaving unless it was renamed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror or error}; pass another --out") from None
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        yield temporary
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror or error}; pass another --out") from None
    finally:
        temporary.unlink(missing_ok=True)
