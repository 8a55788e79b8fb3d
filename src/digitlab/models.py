"""MODELS: small, self-contained classifiers. Each takes (B, H, W) normalised images, returns (B, classes) logits.

Sequence models read an image as H time steps of W pixels (28 rows of 28 pixels for MNIST), as Su (2018).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

# `digitlab tune` searches each model over its `search_space`: TrainConfig settings and their ranges, in the plain
# format of digitlab.tune.space (which adds the optimisation's: optimizer, lr, batch size, schedule, weight decay).
RECURRENT_SEARCH_SPACE = {
    "hidden_size": {"low": 32, "high": 256, "log": True},
    "num_layers": {"low": 1, "high": 3},
    "dropout": {"low": 0.0, "high": 0.3, "when": {"num_layers": [2, 3]}},  # it acts between recurrent layers
    "grad_clip": {"choices": [0.0, 1.0]},
}


class LSTMClassifier(nn.Module):
    """The paper's LSTM: stacked LSTM over the rows, class from the last step's output."""

    default_hidden_size, default_num_layers = 128, 2
    search_space = RECURRENT_SEARCH_SPACE  # digitlab tune's

    def __init__(
        self,
        image_height: int,
        image_width: int,
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.lstm = nn.LSTM(image_width, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(images)  # (B, H, hidden)
        return self.fc(out[:, -1, :])  # (B, classes)


BLSTM_HEADS = ("paper", "final")


class BiLSTMClassifier(nn.Module):
    """The paper's BLSTM. head="paper" classifies from out[:, -1, :] as Su (2018) did, where the reverse
    direction has read only the last row; head="final" uses both directions' final states instead."""

    default_hidden_size, default_num_layers = 128, 2
    search_space = RECURRENT_SEARCH_SPACE  # digitlab tune's

    def __init__(
        self,
        image_height: int,
        image_width: int,
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        head: str = "paper",
    ):
        super().__init__()
        if head not in BLSTM_HEADS:
            raise ValueError(f"unknown BLSTM head {head!r}; choose one of: {', '.join(BLSTM_HEADS)}")
        self.head = head
        self.skip_unused_steps = True  # paper head: compute only what out[:, -1, :] depends on (same result)
        self.lstm = nn.LSTM(image_width, hidden_size, num_layers, batch_first=True, dropout=dropout, bidirectional=True)
        self.fc = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.head == "paper" and self.skip_unused_steps:
            return self.fc(self.paper_features(images))
        out, (h_n, _) = self.lstm(images)  # out: (B, H, 2*hidden); h_n: (layers*2, B, hidden)
        if self.head == "paper":
            features = out[:, -1, :]  # forward state after all rows, reverse state after the last row only
        else:
            features = torch.cat([h_n[-2], h_n[-1]], dim=1)  # (B, 2*hidden): each direction after all rows
        return self.fc(features)

    def paper_features(self, images: torch.Tensor) -> torch.Tensor:
        """out[:, -1, :] of self.lstm, without the top layer's 27 reverse steps that it never reads.

        The top layer's reverse direction, read at the last row, has taken one step from a zero state:
        that one step is computed by hand; everything below runs on the usual fused kernels.
        """
        lstm, batch = self.lstm, images.shape[0]
        layers, hidden = lstm.num_layers, lstm.hidden_size
        weights = [
            getattr(lstm, f"{kind}_l{layer}{direction}")
            for layer in range(layers)
            for direction in ("", "_reverse")
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]
        x = images
        if layers > 1:
            zeros = images.new_zeros(2 * (layers - 1), batch, hidden)
            x, _, _ = torch.lstm(
                x,
                (zeros, zeros),
                weights[: 8 * (layers - 1)],
                True,
                layers - 1,
                lstm.dropout,
                self.training,
                True,
                True,
            )  # (B, H, 2*hidden)
            x = nn.functional.dropout(x, lstm.dropout, self.training)  # nn.LSTM drops out between layers
        top = weights[8 * (layers - 1) :]
        zeros = images.new_zeros(1, batch, hidden)
        forward_out, _, _ = torch.lstm(x, (zeros, zeros), top[:4], True, 1, 0.0, self.training, False, True)
        w_ih, w_hh, b_ih, b_hh = top[4:]
        h0 = images.new_zeros(batch, hidden)
        gates = x[:, -1, :] @ w_ih.t() + b_ih + h0 @ w_hh.t() + b_hh  # (B, 4*hidden); h0 keeps w_hh in the graph
        in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=1)  # each (B, hidden)
        cell = torch.sigmoid(in_gate) * torch.tanh(cell_gate)  # + sigmoid(forget_gate) * c0, and c0 = 0
        reverse_last = torch.sigmoid(out_gate) * torch.tanh(cell)  # (B, hidden)
        return torch.cat([forward_out[:, -1, :], reverse_last], dim=1)  # (B, 2*hidden)


class GRUClassifier(nn.Module):
    """A stacked GRU over the rows, class from the last step's output."""

    default_hidden_size, default_num_layers = 128, 2
    search_space = RECURRENT_SEARCH_SPACE  # digitlab tune's

    def __init__(
        self,
        image_height: int,
        image_width: int,
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.gru = nn.GRU(image_width, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(images)  # (B, H, hidden)
        return self.fc(out[:, -1, :])


class ConvNet(nn.Module):
    """The classic MNIST CNN: two 5x5 convolutions (32, 64 channels), each with ReLU and 2x2 max-pooling,
    then two fully connected layers. num_layers is fixed by the architecture and must be 2."""

    default_hidden_size, default_num_layers = 1024, 2
    search_space = {"hidden_size": {"low": 128, "high": 1024, "log": True}}  # digitlab tune's (see the top)

    def __init__(
        self,
        image_height: int,
        image_width: int,
        num_classes: int,
        hidden_size: int = 1024,
        num_layers: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        if num_layers != 2:
            raise ValueError(
                f"the cnn has exactly 2 fully connected layers, got --num-layers {num_layers}; drop --num-layers"
            )
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(64 * (image_height // 4) * (image_width // 4), hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.unsqueeze(1)  # (B, 1, H, W)
        x = self.pool(torch.relu(self.conv1(x)))  # (B, 32, H/2, W/2)
        x = self.pool(torch.relu(self.conv2(x)))  # (B, 64, H/4, W/4)
        x = x.flatten(1)  # (B, 64 * H/4 * W/4)
        x = self.dropout(torch.relu(self.fc1(x)))  # (B, hidden)
        return self.fc2(x)


class VGGNet(nn.Module):
    """A small VGG-style CNN: blocks of two 3x3 convolutions with batch norm, each block then max-pooled, and a
    batch-normed hidden layer. channels: the first block's, doubled in each next one; num_layers: blocks."""

    default_hidden_size, default_num_layers, default_channels = 128, 2, 16
    search_space = {  # digitlab tune's (see the top)
        "channels": {"low": 8, "high": 32, "log": True},
        "num_layers": {"low": 1, "high": 3},
        "hidden_size": {"low": 64, "high": 256, "log": True},
    }

    def __init__(
        self,
        image_height: int,
        image_width: int,
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        channels: int = 16,
    ):
        super().__init__()
        if image_height >> num_layers == 0 or image_width >> num_layers == 0:
            raise ValueError(
                f"the vgg model halves the image {num_layers} times (--num-layers), too often for "
                f"{image_height}x{image_width} images; choose fewer layers"
            )
        layers: list[nn.Module] = []
        width_in, height, width = 1, image_height, image_width
        for block in range(num_layers):
            width_out = channels * 2**block
            for _ in range(2):  # bias off: batch norm's shift replaces it
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images.unsqueeze(1))  # (B, 1, H, W) -> (B, C, H / 2^blocks, W / 2^blocks)
        x = self.hidden(x.flatten(1))  # (B, hidden)
        return self.fc(self.dropout(x))  # (B, classes)


class MLP(nn.Module):
    """A multilayer perceptron on the flattened image: num_layers hidden ReLU layers."""

    default_hidden_size, default_num_layers = 256, 2
    search_space = {  # digitlab tune's (see the top)
        "hidden_size": {"low": 64, "high": 1024, "log": True},
        "num_layers": {"low": 1, "high": 3},
    }

    def __init__(
        self,
        image_height: int,
        image_width: int,
        num_classes: int,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = image_height * image_width
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(images.flatten(1)))  # (B, H*W) -> (B, classes)


MODELS = {
    "lstm": LSTMClassifier, "blstm": BiLSTMClassifier, "gru": GRUClassifier, "cnn": ConvNet, "vgg": VGGNet, "mlp": MLP,
}  # fmt: skip


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
    """Instantiate MODELS[name]; None sizes take the model's own defaults."""
    cls = MODELS[name]
    kwargs = dict(
        image_height=image_shape[0],
        image_width=image_shape[1],
        num_classes=num_classes,
        hidden_size=hidden_size or cls.default_hidden_size,
        num_layers=num_layers or cls.default_num_layers,
        dropout=dropout,
    )
    parameters = inspect.signature(cls).parameters
    if "head" in parameters:
        kwargs["head"] = head
    if "channels" in parameters:
        kwargs["channels"] = channels or cls.default_channels
    elif channels is not None:
        raise ValueError(f"--channels sizes convolution blocks (the vgg model); the {name} model has none")
    return cls(**kwargs)


def build_from_config(config, image_shape: tuple[int, int], num_classes: int) -> nn.Module:
    return build(
        config.model, image_shape, num_classes, config.hidden_size, config.num_layers, config.dropout,
        config.blstm_head, config.channels,
    )  # fmt: skip


def uses_batch_statistics(model: nn.Module) -> bool:
    """Whether the model normalises over the batch in training (batch norm): then how a step's batch is cut
    into micro-batches, or shared among processes, changes what it computes, and a share of one example fails."""
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
