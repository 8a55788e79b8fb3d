"""Load a finished run's model: its config.json and model.safetensors (tensors and JSON only, no pickle)."""

from __future__ import annotations

from pathlib import Path

import torch

from digitlab.errors import RunError
from digitlab.models import build_from_config
from digitlab.store import rundir


def load_model(run_dir: Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The trained model of a finished run (eval mode) and its weights' metadata."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is not a directory; pass a run directory printed by 'digitlab train'")
    if not rundir.is_finished(run_dir):
        raise RunError(
            f"{run_dir} is not a finished run (no {rundir.RESULT}); finish it with 'digitlab train --resume {run_dir}'"
        )
    config = rundir.load_config(run_dir)
    tensors, info = rundir.read_weights(run_dir)
    try:
        model = build_from_config(config, tuple(info["image_shape"]), info["num_classes"])
    except (KeyError, ValueError) as error:
        raise RunError(f"{run_dir}: the config and weights do not describe a model ({error})") from None
    rundir.apply_weights(run_dir, model, tensors)
    return model.to(device).eval(), info
