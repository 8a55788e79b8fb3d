"""Classify digits with a finished run's model."""
from __future__ import annotations

from pathlib import Path

import torch

from digitlab import runs
from digitlab.data import normalize
from digitlab.models import build_from_config


def load_model(run_dir: Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The trained model of a finished run (eval mode) and its weights' metadata."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise runs.RunError(f"{run_dir} is not a directory; pass a run directory printed by 'digitlab train'")
    if not runs.is_finished(run_dir):
        raise runs.RunError(f"{run_dir} is not a finished run (no {runs.RESULT}); finish it with "
                            f"'digitlab train --resume {run_dir}'")
    config = runs.load_config(run_dir)
    tensors, info = runs.read_weights(run_dir)
    try:
        model = build_from_config(config, tuple(info["image_shape"]), info["num_classes"])
    except (KeyError, ValueError) as error:
        raise runs.RunError(f"{run_dir}: the config and weights do not describe a model ({error})") from None
    runs.apply_weights(run_dir, model, tensors)
    return model.to(device).eval(), info


@torch.inference_mode()
def probabilities(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W) -> class probabilities (N, classes)."""
    device = next(model.parameters()).device
    return torch.softmax(model(normalize(images).to(device)).float(), dim=1).cpu()
