"""MLP (mlp): a multilayer perceptron on the flattened image."""

from __future__ import annotations

import torch
from torch import nn

from digitlab.models.settings import ModelSettings, refuse_channels


class MLP(nn.Module):
    """A multilayer perceptron on the flattened image: num_layers hidden ReLU layers."""

    default_hidden_size, default_num_layers = 256, 2
    search_space = {  # digitlab tune's (see recurrent.py)
        "hidden_size": {"low": 64, "high": 1024, "log": True},
        "num_layers": {"low": 1, "high": 3},
    }

    def __init__(
        self, image_height: int, image_width: int, num_classes: int, hidden_size: int, num_layers: int, dropout: float
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = image_height * image_width
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    @classmethod
    def from_config(cls, config: ModelSettings, image_shape: tuple[int, int], num_classes: int) -> MLP:
        refuse_channels(config)
        hidden_size = config.hidden_size or cls.default_hidden_size
        num_layers = config.num_layers or cls.default_num_layers
        return cls(*image_shape, num_classes, hidden_size, num_layers, config.dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.body(images.flatten(1))  # (B, H*W) -> (B, hidden)
        return self.fc(x)  # (B, classes)
