"""MODELS: small, self-contained classifiers. Each takes (B, H, W) normalised images, returns (B, classes) logits.

One file per family: recurrent (lstm, gru, blstm and its BLSTM_HEADS), conv (cnn, vgg, speedcnn), mlp. Each model builds
itself from a config's model settings (its classmethod `from_config`); settings holds what those are
(ModelSettings) and the --channels refusal the models without convolution blocks share.
Here: MODELS (name -> class), build_from_config (MODELS[config.model] from a TrainConfig), build (one model from
keyword settings, without a TrainConfig), uses_batch_statistics and count_parameters.
"""

from __future__ import annotations

from torch import nn

from digitlab.models.conv import ConvNet, SpeedCNN, VGGNet
from digitlab.models.mlp import MLP
from digitlab.models.recurrent import BLSTM_HEADS, BiLSTMClassifier, GRUClassifier, LSTMClassifier
from digitlab.models.settings import ModelSettings

__all__ = [
    "BLSTM_HEADS", "MLP", "MODELS", "BiLSTMClassifier", "ConvNet", "GRUClassifier", "LSTMClassifier", "ModelSettings",
    "SpeedCNN", "VGGNet", "build", "build_from_config", "count_parameters", "uses_batch_statistics",
]  # fmt: skip

MODELS = {
    "lstm": LSTMClassifier, "blstm": BiLSTMClassifier, "gru": GRUClassifier,
    "cnn": ConvNet, "vgg": VGGNet, "speedcnn": SpeedCNN, "mlp": MLP,
}  # fmt: skip


def build_from_config(config: ModelSettings, image_shape: tuple[int, int], num_classes: int) -> nn.Module:
    """MODELS[config.model], built from the config's model settings (a TrainConfig, or ModelSettings)."""
    return MODELS[config.model].from_config(config, image_shape, num_classes)


def build(
    name: str,
    image_shape: tuple[int, int],
    num_classes: int,
    hidden_size: int | None = None,
    num_layers: int | None = None,
    dropout: float = 0.0,
    head: str = "paper",
    channels: int | None = None,
) -> nn.Module:
    """MODELS[name] from these settings (TrainConfig's defaults); None sizes take the model's own defaults."""
    settings = ModelSettings(name, hidden_size, num_layers, channels, dropout, blstm_head=head)
    return build_from_config(settings, image_shape, num_classes)


def uses_batch_statistics(model: nn.Module) -> bool:
    """Whether the model normalises over the batch in training (batch norm): then how a step's batch is cut
    into micro-batches, or shared among processes, changes what it computes, and a share of one example fails."""
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
