"""Classify with a model exported by `digitlab export --format onnx`, through onnxruntime (no PyTorch needed).

The file is self-contained: its graph takes float32 images (N, H, W) of raw pixel values 0..255, normalises
them as training did, and returns "logits" (N, classes); its metadata_props say it is digitlab's
(FORMAT_KEY), its image shape, classes and class names, and where it came from. Only such files are
accepted: any other file, a damaged one, or an ONNX model without that metadata is refused with one line.
Loading an ONNX file runs no Python code from it (unlike unpickling): onnxruntime only parses a protobuf.

Holds the format's names (OPSET, FORMAT_KEY, FORMAT_VERSION, INPUT_NAME, OUTPUT_NAME), the check that the
extra is installed (require, MissingExtra), the model run by onnxruntime in batches (OnnxClassifier, through
classifier.in_batches), and reading a file's metadata (read_metadata).

onnx, onnxruntime and onnxscript (which torch.onnx's exporter needs) are an optional extra, `pip install
'digitlab[export]'`: nothing imports them at module level, so that the other commands work without them, and
a command that needs them fails with one line that says what to install (require).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from digitlab.errors import CheckpointError, DigitlabError
from digitlab.inference.classifier import in_batches

INSTALL = "pip install 'digitlab[export]'"
EXPORT_MODULES = ("onnx", "onnxruntime", "onnxscript")  # writing (digitlab.inference.export)
RUN_MODULES = ("onnxruntime",)  # reading and running an exported model
OPSET = 18  # the ai.onnx opset written by default: onnxscript's torch library is written in it; ORT >= 1.14
FORMAT_KEY, FORMAT_VERSION = "digitlab_format", "1"  # metadata that marks a file as digitlab's, and its layout
INPUT_NAME, OUTPUT_NAME = "images", "logits"
BATCH = 1024  # images per onnxruntime call: bounds the memory of a large request


class MissingExtra(DigitlabError):
    """The export extra's packages are not installed."""


def require(purpose: str, modules: tuple[str, ...] = EXPORT_MODULES) -> None:
    """Raise MissingExtra, one line naming what to install, unless every module in `modules` is importable."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtra(f"{purpose} needs the export extra: {INSTALL} (not installed: {', '.join(missing)})")


class OnnxClassifier:
    """An exported model, run on the CPU by onnxruntime (its default intra-op threads: the physical cores).

    source: the file; class_names: by class index, None for a dataset without names (the digits);
    image_shape: (height, width) the model takes; probabilities(uint8 (N, H, W)) -> float32 (N, classes).
    """

    source: str
    class_names: list[str] | None
    image_shape: tuple[int, int]

    def __init__(self, path: str | Path):
        require("running an ONNX model", RUN_MODULES)
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist; pass a file written by 'digitlab export RUN --format onnx'")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf/... for a bad file
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(f"{path} is not a usable ONNX model ({reason[:200]})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.source = str(path)
        self.image_shape, self.num_classes, self.class_names = read_metadata(self.metadata, path)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
            raise CheckpointError(
                f"{path} claims to be a digitlab model but its graph does not take {INPUT_NAME!r} and return "
                f"{OUTPUT_NAME!r}; export it again with 'digitlab export RUN --format onnx'"
            )

    def logits(self, images: np.ndarray) -> np.ndarray:
        """uint8 (or 0..255 float) images (N, H, W) -> float32 logits (N, classes), BATCH images per call."""

        def run(batch: np.ndarray) -> np.ndarray:
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

        return in_batches(self, images, np.float32, BATCH, run)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W) -> float32 class probabilities (N, classes): the softmax of the logits."""
        logits = self.logits(images)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.source!r})"


def read_metadata(metadata: dict[str, str], path: Path) -> tuple[tuple[int, int], int, list[str] | None]:
    """(image_shape, num_classes, class_names) from an exported file's metadata_props; CheckpointError, naming
    the file, if it is not digitlab's or its metadata is damaged."""
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
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} has damaged digitlab metadata ({error}); export the run again") from None
    return (height, width), num_classes, [str(name) for name in names] if names is not None else None
