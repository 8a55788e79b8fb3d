"""The ONNX file `digitlab export --format onnx` writes and classifier.OnnxClassifier runs (no PyTorch needed).

The file is self-contained: its graph takes float32 images (N, H, W) of raw pixel values 0..255, normalises
them as training did, and returns "logits" (N, classes); its metadata_props say it is digitlab's
(FORMAT_KEY), its image shape, classes and class names, where it came from, and its calibration: the graph's
logits are already divided by the run's temperature (TEMPERATURE_KEY records T; 1 for an uncalibrated run), so that
any onnxruntime user's softmax is calibrated, and REJECT_KEY records the "not a digit" threshold (JSON null: none).
A file exported before calibration existed has neither key: T 1, no threshold. Only such files are
accepted: any other file, a damaged one, or an ONNX model without that metadata is refused with one line.
Loading an ONNX file runs no Python code from it (unlike unpickling): onnxruntime only parses a protobuf.

Holds the format's names (OPSET, FORMAT_KEY, FORMAT_VERSION, INPUT_NAME, OUTPUT_NAME), the check that the
extra is installed (require, MissingExtra, INSTALL, EXPORT_MODULES, RUN_MODULES), and reading what a file says
it is from its metadata (read_metadata, Metadata).

onnx, onnxruntime and onnxscript (which torch.onnx's exporter needs) are an optional extra, `pip install
'digitlab[export]'`: nothing imports them at module level, so that the other commands work without them, and
a command that needs them fails with one line that says what to install (require).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import NamedTuple

from digitlab.errors import CheckpointError, DigitlabError

INSTALL = "pip install 'digitlab[export]'"
EXPORT_MODULES = ("onnx", "onnxruntime", "onnxscript")  # writing (digitlab.inference.export)
RUN_MODULES = ("onnxruntime",)  # reading and running an exported model
OPSET = 18  # the ai.onnx opset written by default: onnxscript's torch library is written in it; ORT >= 1.14
FORMAT_KEY, FORMAT_VERSION = "digitlab_format", "1"  # metadata that marks a file as digitlab's, and its layout
INPUT_NAME, OUTPUT_NAME = "images", "logits"
TEMPERATURE_KEY, REJECT_KEY = "temperature", "reject_below"


class Metadata(NamedTuple):
    """What an exported file says it is. temperature: the T its logits are already divided by (never divide
    again); reject_below: the calibrated top probability below which an answer is "not a digit" (None: none)."""

    image_shape: tuple[int, int]
    num_classes: int
    class_names: list[str] | None
    temperature: float = 1.0
    reject_below: float | None = None


class MissingExtra(DigitlabError):
    """The export extra's packages are not installed."""


def require(purpose: str, modules: tuple[str, ...] = EXPORT_MODULES) -> None:
    """Raise MissingExtra, one line naming what to install, unless every module in `modules` is importable."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtra(f"{purpose} needs the export extra: {INSTALL} (not installed: {', '.join(missing)})")


def read_metadata(metadata: dict[str, str], path: Path) -> Metadata:
    """What an exported file's metadata_props say it is (Metadata); CheckpointError, naming the file, if it is not
    digitlab's or its metadata is damaged."""
    if FORMAT_KEY not in metadata:
        raise CheckpointError(
            f"{path} is an ONNX model but not one digitlab exported (no {FORMAT_KEY} metadata); "
            f"export a run with 'digitlab export RUN --format onnx'"
        )
    if metadata[FORMAT_KEY] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is digitlab ONNX format {metadata[FORMAT_KEY]!r}; this digitlab reads format "
            f"{FORMAT_VERSION!r}: upgrade digitlab, or export the run again"
        )
    try:
        height, width = (int(size) for size in json.loads(metadata["image_shape"]))
        num_classes = int(metadata["num_classes"])
        names = json.loads(metadata.get("class_names", "null"))
        if names is not None and (not isinstance(names, list) or len(names) != num_classes):
            raise ValueError(f"class_names is not a list of {num_classes} names")
        temperature = float(metadata.get(TEMPERATURE_KEY, "1.0"))
        if not 0 < temperature < math.inf:
            raise ValueError(f"temperature {temperature} is not a positive number")
        threshold = json.loads(metadata.get(REJECT_KEY, "null"))
        if threshold is not None and (isinstance(threshold, bool) or not 0 <= float(threshold) <= 1):
            raise ValueError(f"reject_below {threshold!r} is neither null nor a probability")
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} has damaged digitlab metadata ({error}); export the run again") from None
    names = [str(name) for name in names] if names is not None else None
    return Metadata((height, width), num_classes, names, temperature, None if threshold is None else float(threshold))
