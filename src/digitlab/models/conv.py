"""The convolutional models: ConvNet (cnn, the classic MNIST CNN), VGGNet (vgg, batch-normed 3x3 blocks) and
SpeedCNN (speedcnn, a VGGNet with fewer convolutions where the image is large, run channels-last: the speedrun
recipe's)."""

from __future__ import annotations

import torch
from torch import nn

from digitlab.models.settings import ModelSettings, refuse_channels


class ConvNet(nn.Module):
    """The classic MNIST CNN: two 5x5 convolutions (32, 64 channels), each with ReLU and 2x2 max-pooling,
    then two fully connected layers. num_layers is fixed by the architecture and must be 2."""

    default_hidden_size, default_num_layers = 1024, 2
    search_space = {"hidden_size": {"low": 128, "high": 1024, "log": True}}  # digitlab tune's (see recurrent.py)

    def __init__(self, image_height: int, image_width: int, num_classes: int, hidden_size: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(64 * (image_height // 4) * (image_width // 4), hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_classes)

    @classmethod
    def from_config(cls, config: ModelSettings, image_shape: tuple[int, int], num_classes: int) -> ConvNet:
        refuse_channels(config)
        num_layers = config.num_layers or cls.default_num_layers
        if num_layers != 2:
            raise ValueError(
                f"the cnn has exactly 2 fully connected layers, got --num-layers {num_layers}; drop --num-layers"
            )
        return cls(*image_shape, num_classes, config.hidden_size or cls.default_hidden_size, config.dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.unsqueeze(1)  # (B, 1, H, W)
        x = self.pool(torch.relu(self.conv1(x)))  # (B, 32, H/2, W/2)
        x = self.pool(torch.relu(self.conv2(x)))  # (B, 64, H/4, W/4)
        x = x.flatten(1)  # (B, 64 * H/4 * W/4)
        x = self.dropout(torch.relu(self.fc1(x)))  # (B, hidden)
        return self.fc2(x)  # (B, classes)


class VGGNet(nn.Module):
    """A small VGG-style CNN: blocks of two 3x3 convolutions with batch norm, each block then max-pooled, and a
    batch-normed hidden layer. channels: the first block's, doubled in each next one; num_layers: blocks."""

    default_hidden_size, default_num_layers, default_channels = 128, 2, 16
    search_space = {  # digitlab tune's (see recurrent.py)
        "channels": {"low": 8, "high": 32, "log": True},
        "num_layers": {"low": 1, "high": 3},
        "hidden_size": {"low": 64, "high": 256, "log": True},
    }

    def __init__(
        self,
        image_height: int,
        image_width: int,
        num_classes: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        channels: int,
    ):
        super().__init__()
        if image_height >> num_layers == 0 or image_width >> num_layers == 0:
            raise ValueError(
                f"this model halves the image {num_layers} times (--num-layers), too often for "
                f"{image_height}x{image_width} images; choose fewer layers"
            )
        layers: list[nn.Module] = []
        width_in, height, width = 1, image_height, image_width
        for block in range(num_layers):
            width_out = channels * 2**block
            for _ in range(self.convolutions_in(block, num_layers)):  # bias off: batch norm's shift replaces it
                layers += [
                    nn.Conv2d(width_in, width_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width_out),
                    nn.ReLU(),
                ]
                width_in = width_out
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        self.features = nn.Sequential(*layers)
        self.hidden = nn.Sequential(
            nn.Linear(width_in * height * width, hidden_size, bias=False), nn.BatchNorm1d(hidden_size), nn.ReLU()
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, num_classes)

    @staticmethod
    def convolutions_in(block: int, blocks: int) -> int:
        return 2

    @classmethod
    def from_config(cls, config: ModelSettings, image_shape: tuple[int, int], num_classes: int) -> VGGNet:
        hidden_size = config.hidden_size or cls.default_hidden_size
        num_layers = config.num_layers or cls.default_num_layers
        channels = config.channels or cls.default_channels
        return cls(*image_shape, num_classes, hidden_size, num_layers, config.dropout, channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images.unsqueeze(1))  # (B, 1, H, W) -> (B, C, H / 2^blocks, W / 2^blocks)
        x = self.hidden(x.flatten(1))  # (B, hidden)
        return self.fc(self.dropout(x))  # (B, classes)


class SpeedCNN(VGGNet):
    """A VGGNet that spends its convolutions where the image is small: one in the first block (full resolution) and
    one in the last, two in each between (3 blocks: 16, 32+32, 64 channels). Against vgg's two blocks of two it has
    fewer multiply-adds per image (3.8M against 4.8M) and, above all, no 16-to-16-channel convolution at full
    resolution, the layer a CPU runs least efficiently. Its weights are channels-last, the layout oneDNN's
    convolutions run natively. The speedrun recipe's model (benchmarks/results/cpu_speedrun.md)."""

    default_num_layers = 3

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A 1-channel input is the same in either layout; channels-last weights make each convolution's output so.
        self.to(memory_format=torch.channels_last)

    @staticmethod
    def convolutions_in(block: int, blocks: int) -> int:
        return 1 if block in (0, blocks - 1) else 2
