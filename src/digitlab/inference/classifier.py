"""One interface over the models digitlab can classify with: a finished run (PyTorch), an exported .onnx file
(onnxruntime), or the model shipped inside the package, so that `digitlab predict` and `digitlab serve` need
not know which they were given.

The shipped model is a finished run directory (default_model/): the `cnn-best` recipe, seed 0, trained on
MNIST's 60,000 training images less 5,000 held out, 99.64% on MNIST's test set with its weight average.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from digitlab.errors import ConfigError, DataError, RunError

BATCH = 256  # images per forward pass: bounds the memory of a long list of files
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "default_model"
DEFAULT_SOURCE = "the default model (cnn-best)"
RUN_MARKER = "config.json"  # digitlab.store.rundir.CONFIG: its presence marks a folder as a run


class Classifier(Protocol):
    source: str  # what was loaded, for messages and JSON
    class_names: list[str] | None  # by class index; None: the classes are the digits 0-9
    image_shape: tuple[int, int]  # (height, width) of the images the model takes

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W) -> float32 class probabilities (N, classes)."""
        ...


class TorchClassifier:
    """A finished run's model, on `device`, with the weights `weights` chooses (load.WEIGHT_CHOICES)."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", weights: str = "auto", source: str | None = None):
        from digitlab.inference.load import load_model  # torch loads only for PyTorch models
        from digitlab.training.device import parse_device

        self.model, self.info = load_model(Path(run_dir), device=str(parse_device(device)), weights=weights)
        self.source = source or str(run_dir)
        names = self.info.get("class_names")
        self.class_names = [str(name) for name in names] if names else None
        self.image_shape = (int(self.info["image_shape"][0]), int(self.info["image_shape"][1]))
        self.num_classes = int(self.info["num_classes"])

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        import torch

        from digitlab.inference.predict import probabilities

        images = np.asarray(images)
        if images.ndim != 3 or tuple(images.shape[1:]) != self.image_shape:
            raise DataError(
                f"{self.source} takes images of shape (N, {self.image_shape[0]}, {self.image_shape[1]}), "
                f"got {tuple(images.shape)}"
            )
        if len(images) == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        pixels = np.ascontiguousarray(images, dtype=np.uint8)
        parts = [
            probabilities(self.model, torch.from_numpy(pixels[start : start + BATCH])).numpy()
            for start in range(0, len(pixels), BATCH)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"TorchClassifier({self.source!r})"


def is_model(argument: str | Path) -> bool:
    """Whether a command-line argument names a model (a run directory or an .onnx file) rather than an image."""
    path = Path(argument)
    return path.suffix.lower() == ".onnx" or (path.is_dir() and (path / RUN_MARKER).is_file())


def open_classifier(model: str | Path | None, device: str = "cpu", weights: str = "auto") -> Classifier:
    """The classifier `model` names: None for the shipped default, a run directory, or an .onnx file (run by
    onnxruntime on the CPU). RunError, in one line, for anything else."""
    if model is None:
        return TorchClassifier(DEFAULT_MODEL, device, weights, source=DEFAULT_SOURCE)
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        if weights != "auto":
            raise ConfigError(f"{path} holds one set of weights; --weights chooses a run's, drop it")
        if device != "cpu":
            raise ConfigError(f"{path} runs on the CPU (onnxruntime); drop --device, or pass the run directory")
        from digitlab.inference.onnx_model import OnnxClassifier  # onnxruntime is an optional extra

        return OnnxClassifier(path)
    if path.is_dir() and (path / RUN_MARKER).is_file():
        return TorchClassifier(path, device, weights)
    what = "does not exist" if not path.exists() else "is a folder without config.json" if path.is_dir() else None
    raise RunError(
        f"{path} {what or 'is neither a run directory nor an .onnx file'}; pass a run directory printed by "
        f"'digitlab train' or a file written by 'digitlab export', or nothing for the default model"
    )
