"""Load a finished run's model: its config.json and weights (tensors and JSON only, no pickle).

A run trained with --ema-decay has two sets of weights; its moving average (model-ema.safetensors) is the
run's model unless the raw weights are asked for.
"""

from __future__ import annotations

from pathlib import Path

import torch

from digitlab.errors import RunError
from digitlab.models import build_from_config
from digitlab.store import rundir

WEIGHT_CHOICES = ("auto", "raw", "ema")  # auto: the moving average where the run kept one, else the raw weights


def load_model(run_dir: Path, device: str = "cpu", weights: str = "auto") -> tuple[torch.nn.Module, dict]:
    """The trained model of a finished run (eval mode) and its weights' metadata ("weights" names the file)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is not a directory; pass a run directory printed by 'digitlab train'")
    if not rundir.is_finished(run_dir):
        raise RunError(
            f"{run_dir} is not a finished run (no {rundir.RESULT}); finish it with 'digitlab train --resume {run_dir}'"
        )
    config = rundir.load_config(run_dir)
    has_average = (run_dir / rundir.AVERAGE_WEIGHTS).is_file()
    if weights == "ema" and not has_average:
        raise RunError(f"{run_dir} has no weight average (it was trained without --ema-decay); use the raw weights")
    name = rundir.AVERAGE_WEIGHTS if (weights == "ema" or (weights == "auto" and has_average)) else rundir.WEIGHTS
    tensors, info = rundir.read_weights(run_dir, name)
    try:
        model = build_from_config(config, tuple(info["image_shape"]), info["num_classes"])
    except (KeyError, ValueError) as error:
        raise RunError(f"{run_dir}: the config and weights do not describe a model ({error})") from None
    rundir.apply_weights(run_dir, model, tensors)
    return model.to(device).eval(), info | {"weights": name}
