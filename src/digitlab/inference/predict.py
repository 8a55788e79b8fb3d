"""Classify images with a loaded model."""

from __future__ import annotations

import torch

from digitlab.data.dataset import normalize


@torch.inference_mode()
def probabilities(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W) -> class probabilities (N, classes)."""
    device = next(model.parameters()).device
    return torch.softmax(model(normalize(images).to(device)).float(), dim=1).cpu()
