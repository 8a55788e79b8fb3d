"""The sequence models: RecurrentClassifier over a cell type, as LSTMClassifier (lstm) and GRUClassifier (gru), and
BiLSTMClassifier (blstm) with its BLSTM_HEADS; RECURRENT_SEARCH_SPACE, what `digitlab tune` searches for each.

They read an image as H time steps of W pixels (28 rows of 28 pixels for MNIST), as Su (2018).
"""

from __future__ import annotations

import torch
from torch import nn

from digitlab.models.settings import ModelSettings, refuse_channels

# `digitlab tune` searches each model over its `search_space`: TrainConfig settings and their ranges, in the plain
# format of digitlab.tune.space (which adds the optimisation's: optimizer, lr, batch size, schedule, weight decay).
RECURRENT_SEARCH_SPACE = {
    "hidden_size": {"low": 32, "high": 256, "log": True},
    "num_layers": {"low": 1, "high": 3},
    "dropout": {"low": 0.0, "high": 0.3, "when": {"num_layers": [2, 3]}},  # it acts between recurrent layers
    "grad_clip": {"choices": [0.0, 1.0]},
}

BLSTM_HEADS = ("paper", "final")


class RecurrentClassifier(nn.Module):
    """A stacked recurrent network over the rows (its `cell`: nn.LSTM or nn.GRU), class from the last step's output."""

    cell: type[nn.RNNBase]  # each subclass's
    cell_name: str  # the attribute holding the cell, so the first part of its state_dict keys, which saved runs hold
    bidirectional = False
    default_hidden_size, default_num_layers = 128, 2
    search_space = RECURRENT_SEARCH_SPACE  # digitlab tune's

    def __init__(self, image_width: int, num_classes: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        rnn = self.cell(
            image_width, hidden_size, num_layers, batch_first=True, dropout=dropout, bidirectional=self.bidirectional
        )
        self.add_module(self.cell_name, rnn)  # self.lstm or self.gru
        self.fc = nn.Linear((2 if self.bidirectional else 1) * hidden_size, num_classes)

    @classmethod
    def from_config(cls, config: ModelSettings, image_shape: tuple[int, int], num_classes: int) -> RecurrentClassifier:
        refuse_channels(config)
        hidden_size = config.hidden_size or cls.default_hidden_size
        num_layers = config.num_layers or cls.default_num_layers
        return cls(image_shape[1], num_classes, hidden_size, num_layers, config.dropout)

    @property
    def rnn(self) -> nn.RNNBase:
        return getattr(self, self.cell_name)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(images)  # (B, H, hidden)
        return self.fc(out[:, -1, :])  # (B, classes)


class LSTMClassifier(RecurrentClassifier):
    """The paper's LSTM: stacked LSTM over the rows, class from the last step's output."""

    cell, cell_name = nn.LSTM, "lstm"


class GRUClassifier(RecurrentClassifier):
    """A stacked GRU over the rows, class from the last step's output."""

    cell, cell_name = nn.GRU, "gru"


class BiLSTMClassifier(RecurrentClassifier):
    """The paper's BLSTM. head="paper" classifies from out[:, -1, :] as Su (2018) did, where the reverse
    direction has read only the last row; head="final" uses both directions' final states instead."""

    cell, cell_name, bidirectional = nn.LSTM, "lstm", True

    def __init__(
        self, image_width: int, num_classes: int, hidden_size: int, num_layers: int, dropout: float, head: str
    ):
        if head not in BLSTM_HEADS:
            raise ValueError(f"unknown BLSTM head {head!r}; choose one of: {', '.join(BLSTM_HEADS)}")
        super().__init__(image_width, num_classes, hidden_size, num_layers, dropout)
        self.head = head
        self.skip_unused_steps = True  # paper head: compute only what out[:, -1, :] depends on (same result)

    @classmethod
    def from_config(cls, config: ModelSettings, image_shape: tuple[int, int], num_classes: int) -> BiLSTMClassifier:
        refuse_channels(config)
        hidden_size = config.hidden_size or cls.default_hidden_size
        num_layers = config.num_layers or cls.default_num_layers
        return cls(image_shape[1], num_classes, hidden_size, num_layers, config.dropout, config.blstm_head)

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
