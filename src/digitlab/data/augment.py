"""Batch augmentation: random affine (rotation, scale, shift) and elastic distortion, as tensor operations
on whole batches on the training device.

The random draws are a pure function of (seed, epoch, step), like the batch order (data.batching): they
are drawn for the whole global batch and each process takes its share, so a resumed run, a run cut into
micro-batches and a run on more processes all see the same augmented images. Only training batches are
augmented; evaluation never calls this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ELASTIC_SMOOTHING = 4.0  # pixels: the Gaussian that smooths elastic displacement fields (Simard et al. 2003)


@dataclass(frozen=True)
class Augmentation:
    """What to draw: each limit is the largest change, drawn uniformly in [-limit, limit]."""

    rotate: float = 0.0  # degrees
    scale: float = 0.0  # relative size change, e.g. 0.1 = 90%..110%
    shift: float = 0.0  # pixels, in each direction
    elastic: float = 0.0  # displacement strength in pixels (0 = off)

    @property
    def enabled(self) -> bool:
        return bool(self.rotate or self.scale or self.shift or self.elastic)


def generator(seed: int, epoch: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of one step's draws: seeded from (seed, epoch, step) alone."""
    mixed = (seed * 1_000_003 + epoch) * 1_000_033 + step  # distinct for distinct triples in practice
    return torch.Generator(device=device).manual_seed(mixed % (2**63 - 1))


def draw(augmentation: Augmentation, count: int, image_shape, seed: int, epoch: int, step: int, device) -> torch.Tensor:
    """Sampling grids for `count` images (count, H, W, 2), for F.grid_sample: one per image of the global batch."""
    height, width = image_shape
    draws = generator(seed, epoch, step, device)

    def uniform(*shape):
        return torch.rand(shape, generator=draws, device=device) * 2 - 1  # in [-1, 1)

    angle = uniform(count) * math.radians(augmentation.rotate)
    scale = 1 + uniform(count) * augmentation.scale
    shift_x = uniform(count) * augmentation.shift * 2 / width  # grid coordinates span 2 over the width
    shift_y = uniform(count) * augmentation.shift * 2 / height
    # The grid maps each output pixel to where it is read from: the inverse of the drawn transform.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta, [count, 1, height, width], align_corners=False)  # (N, H, W, 2)
    if augmentation.elastic:
        displacement = uniform(count, 2, height, width)  # (N, 2, H, W), in pixels before smoothing
        radius = int(3 * ELASTIC_SMOOTHING)
        offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
        kernel = torch.exp(-(offsets**2) / (2 * ELASTIC_SMOOTHING**2))
        kernel = kernel / kernel.sum()
        smooth = displacement.reshape(count * 2, 1, height, width)
        smooth = F.conv2d(smooth, kernel.view(1, 1, 1, -1), padding=(0, radius))  # along the rows
        smooth = F.conv2d(smooth, kernel.view(1, 1, -1, 1), padding=(radius, 0))  # then the columns
        smooth = smooth / smooth.flatten(1).std(dim=1).clamp(min=1e-6).view(-1, 1, 1, 1)  # unit spread
        smooth = smooth.reshape(count, 2, height, width).permute(0, 2, 3, 1)  # (N, H, W, 2)
        grid = grid + smooth * augmentation.elastic * torch.tensor([2 / width, 2 / height], device=device)
    return grid


def apply(images: torch.Tensor, grids: torch.Tensor, background: float) -> torch.Tensor:
    """Resample normalised images (N, H, W) along grids (N, H, W, 2); what comes in from outside is background."""
    shifted = (images - background).unsqueeze(1)  # (N, 1, H, W); zero padding then means background
    out = F.grid_sample(shifted.float(), grids, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (out.squeeze(1) + background).to(images.dtype)  # (N, H, W)
