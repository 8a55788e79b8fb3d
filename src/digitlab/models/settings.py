"""What a model reads from the config: ModelSettings (TrainConfig's model fields, for `build` without a TrainConfig)
and refuse_channels (the refusal every model without convolution blocks shares)."""

from __future__ import annotations

from typing import NamedTuple


class ModelSettings(NamedTuple):
    """TrainConfig's model fields. Each model's from_config reads these from either (a TrainConfig has them all)."""

    model: str
    hidden_size: int | None
    num_layers: int | None
    channels: int | None
    dropout: float
    blstm_head: str


def refuse_channels(config: ModelSettings) -> None:
    """--channels sizes convolution blocks, which only the vgg models (vgg, speedcnn) have."""
    if config.channels is not None:
        raise ValueError(f"--channels sizes convolution blocks (vgg, speedcnn); the {config.model} model has none")
