"""Running a model on images: the one place where digitlab classifies images it was handed, whether the model
is a finished run (PyTorch), an exported .onnx file (onnxruntime) or the model shipped inside the package, so
that `digitlab predict` and `digitlab serve` need not know which they were given.

Holds a loaded PyTorch module's class probabilities (probabilities), the interface every model offers
(Classifier), the batch loop they share (in_batches), a run's model behind that interface (TorchClassifier)
and an exported file's, run by onnxruntime (OnnxClassifier; its format is onnx_model's), and choosing the
model a command-line argument names (is_model, open_classifier, DEFAULT_MODEL).

Every engine answers calibrated probabilities (calibration.py): a run's by its calibration.json, an .onnx file's
inside its graph. Each also says its temperature and its "not a digit" threshold (reject_below; None: none known).

The shipped model is a finished run directory (default_model/): the `cnn-best` recipe, seed 0, trained on
MNIST's 60,000 training images less 5,000 held out (99.69% on MNIST's test set), then fine-tuned for 3 epochs
with 30,000 generated non-digits to answer them with no confident class (`--init`, `--negatives`; the command
is in its env.json): 99.64% on the test set with its weight average, calibrated on the same 5,000.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from digitlab.errors import CheckpointError, ConfigError, DataError, RunError, first_line
from digitlab.inference.calibration import for_weights
from digitlab.inference.onnx_model import INPUT_NAME, OUTPUT_NAME, RUN_MODULES, read_metadata, require

if TYPE_CHECKING:
    import torch

BATCH = 256  # images per forward pass: bounds the memory of a long list of files
ONNX_BATCH = 1024  # images per onnxruntime call: bounds the memory of a large request
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "default_model"
DEFAULT_SOURCE = "the default model (cnn-best)"


def probabilities(model: torch.nn.Module, images: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """uint8 images (N, H, W) -> class probabilities (N, classes), softmax(logits / temperature), normalised as
    training did, on the model's device, without autograd. temperature: the run's calibration (1: none)."""
    import torch  # here, not above: running an .onnx file needs no PyTorch

    from digitlab.data.dataset import normalize

    with torch.inference_mode():
        device = next(model.parameters()).device
        return torch.softmax(model(normalize(images).to(device)).float() / temperature, dim=1).cpu()


class Classifier(Protocol):
    source: str  # what was loaded, for messages and JSON
    class_names: list[str] | None  # by class index; None: the classes are the digits 0-9
    image_shape: tuple[int, int]  # (height, width) of the images the model takes
    num_classes: int
    temperature: float  # the calibration's T, already applied by probabilities(); 1.0: not calibrated
    reject_below: float | None  # a top probability below it is "not a digit"; None: no threshold known

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W) -> float32 class probabilities (N, classes), calibrated (softmax(logits / T))."""
        ...


def in_batches(
    model: Classifier, images: np.ndarray, dtype: type, size: int, run: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """`run` over `images` (N, H, W) as contiguous `dtype` arrays of at most `size` images (bounding the memory
    of a large request), its float32 results (n, classes) joined in order: (0, classes) for no images. DataError,
    naming the model, for images not of the shape it takes."""
    images = np.asarray(images)
    if images.ndim != 3 or tuple(images.shape[1:]) != model.image_shape:
        raise DataError(
            f"{model.source} takes images of shape (N, {model.image_shape[0]}, {model.image_shape[1]}), "
            f"got {tuple(images.shape)}"
        )
    if len(images) == 0:
        return np.zeros((0, model.num_classes), dtype=np.float32)
    pixels = np.ascontiguousarray(images, dtype=dtype)
    parts = [run(pixels[start : start + size]) for start in range(0, len(pixels), size)]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


class TorchClassifier:
    """A finished run's model, on `device`, with the weights `weights` chooses (load.WEIGHT_CHOICES), calibrated
    by the run's calibration.json where it has one for those weights (calibration.for_weights)."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", weights: str = "auto", source: str | None = None):
        from digitlab.inference.load import load_model  # torch loads only for PyTorch models
        from digitlab.training.device import parse_device

        self.model, self.info = load_model(Path(run_dir), device=str(parse_device(device)), weights=weights)
        self.source = source or str(run_dir)
        names = self.info.get("class_names")
        self.class_names = [str(name) for name in names] if names else None
        self.image_shape = (int(self.info["image_shape"][0]), int(self.info["image_shape"][1]))
        self.num_classes = int(self.info["num_classes"])
        calibration = for_weights(run_dir, self.info["weights"])
        self.temperature = calibration.temperature if calibration else 1.0
        self.reject_below = calibration.reject_below if calibration else None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W) -> float32 class probabilities (N, classes), softmax(logits / temperature), BATCH
        images per forward pass."""
        import torch

        def run(batch: np.ndarray) -> np.ndarray:
            return probabilities(self.model, torch.from_numpy(batch), self.temperature).numpy()

        return in_batches(self, images, np.uint8, BATCH, run)

    def __repr__(self) -> str:
        return f"TorchClassifier({self.source!r})"


class OnnxClassifier:
    """An exported model, run on the CPU by onnxruntime (its default intra-op threads: the physical cores).

    source: the file; class_names: by class index, None for a dataset without names (the digits);
    image_shape: (height, width) the model takes; probabilities(uint8 (N, H, W)) -> float32 (N, classes);
    temperature and reject_below: the run's calibration, from the metadata (T is already inside the graph).
    """

    source: str
    class_names: list[str] | None
    image_shape: tuple[int, int]
    num_classes: int
    temperature: float
    reject_below: float | None

    def __init__(self, path: str | Path):
        require("running an ONNX model", RUN_MODULES)
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist; pass a file written by 'digitlab export RUN --format onnx'")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf/... for a bad file
            raise CheckpointError(f"{path} is not a usable ONNX model ({first_line(error)})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.source = str(path)
        found = read_metadata(self.metadata, path)
        self.image_shape, self.num_classes, self.class_names = found.image_shape, found.num_classes, found.class_names
        # The graph's logits are already divided by T (export bakes it in): probabilities() must not divide again.
        self.temperature, self.reject_below = found.temperature, found.reject_below
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
            raise CheckpointError(
                f"{path} claims to be a digitlab model but its graph does not take {INPUT_NAME!r} and return "
                f"{OUTPUT_NAME!r}; export it again with 'digitlab export RUN --format onnx'"
            )

    def logits(self, images: np.ndarray) -> np.ndarray:
        """uint8 (or 0..255 float) images (N, H, W) -> float32 logits (N, classes), already divided by the
        temperature (calibrated), ONNX_BATCH images per call."""

        def run(batch: np.ndarray) -> np.ndarray:
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

        return in_batches(self, images, np.float32, ONNX_BATCH, run)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W) -> float32 class probabilities (N, classes): the softmax of the (calibrated)
        logits."""
        logits = self.logits(images)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.source!r})"


def is_model(argument: str | Path) -> bool:
    """Whether a command-line argument names a model (a run directory or an .onnx file) rather than an image."""
    path = Path(argument)
    return path.suffix.lower() == ".onnx" or _is_run(path)


def _is_run(path: Path) -> bool:
    from digitlab.store.rundir import CONFIG  # here, not above: store loads PyTorch, an .onnx file needs none

    return path.is_dir() and (path / CONFIG).is_file()


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
        return OnnxClassifier(path)
    if _is_run(path):
        return TorchClassifier(path, device, weights)
    what = "does not exist" if not path.exists() else "is a folder without config.json" if path.is_dir() else None
    raise RunError(
        f"{path} {what or 'is neither a run directory nor an .onnx file'}; pass a run directory printed by "
        f"'digitlab train' or a file written by 'digitlab export', or nothing for the default model"
    )
