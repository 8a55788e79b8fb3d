"""Training FLOPs of one epoch, counted from a built model's sizes: the arithmetic a timing is held against.

The count: one epoch's training FLOPs = forward multiply-adds (MACs) per example x 2 FLOPs per MAC x 3
(the forward pass, and a backward pass of about twice the forward: the gradients of the inputs and of the
weights) x examples. Only GEMMs and convolutions count:

- nn.LSTM / nn.GRU: per layer, direction and time step, gates x hidden x (layer input + hidden), with 4 gate
  blocks for the LSTM and 3 for the GRU; sequence models read one image row per step;
- nn.Linear: in x out, once per example;
- nn.Conv2d: out channels x (in channels / groups) x kernel height x kernel width x output height x width.

Gate nonlinearities, pooling, the loss and the optimizer's update are O(activations) or O(parameters) and
left out, and so is the input gradient that the first layer does not need: divided by a measured matmul
rate (perf.matmul), the count gives a floor, a lower bound on the time, not an estimate of it.

The BLSTM's paper head (models.BiLSTMClassifier.paper_features) skips the top layer's reverse steps that
out[:, -1, :] never reads; `computed_only=True` counts what it computes (one reverse step on the top layer),
`computed_only=False` the full bidirectional network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from digitlab.models import MLP, BiLSTMClassifier, ConvNet, GRUClassifier, LSTMClassifier

FLOPS_PER_MAC, TRAINING_PASSES = 2, 3
RNN_GATES = {nn.LSTM: 4, nn.GRU: 3}  # gate blocks per step: each is a (hidden x (input + hidden)) GEMM


def rnn_macs(rnn: nn.RNNBase, steps: int, top_reverse_steps: int | None = None) -> int:
    """One example's forward MACs of an nn.LSTM / nn.GRU over `steps` time steps: per layer, direction and
    step, gates x hidden x (layer input + hidden). `top_reverse_steps`: the steps the top layer's reverse
    direction takes (None: all of them)."""
    if getattr(rnn, "proj_size", 0):
        raise ValueError("rnn_macs does not count LSTM projections (proj_size > 0)")
    directions = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        width = rnn.input_size if layer == 0 else directions * rnn.hidden_size
        per_step = RNN_GATES[type(rnn)] * rnn.hidden_size * (width + rnn.hidden_size)
        total += per_step * steps  # the forward direction
        if rnn.bidirectional:
            top = layer == rnn.num_layers - 1
            total += per_step * (top_reverse_steps if top and top_reverse_steps is not None else steps)
    return total


def linear_macs(linear: nn.Linear) -> int:
    return linear.in_features * linear.out_features


def conv2d_macs(conv: nn.Conv2d, output_hw: tuple[int, int]) -> int:
    kernel_h, kernel_w = conv.kernel_size
    return conv.out_channels * (conv.in_channels // conv.groups) * kernel_h * kernel_w * output_hw[0] * output_hw[1]


def conv_output_sizes(model: nn.Module, image_shape: tuple[int, int]) -> dict[nn.Conv2d, tuple[int, int]]:
    """Each Conv2d's output (height, width) for one image, read off one forward pass of a blank image."""
    sizes: dict[nn.Conv2d, tuple[int, int]] = {}

    def record(conv: nn.Conv2d, inputs, output: torch.Tensor) -> None:
        sizes[conv] = tuple(output.shape[-2:])

    hooks = [module.register_forward_hook(record) for module in model.modules() if isinstance(module, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *image_shape, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def recurrent_macs(model: nn.Module, image_shape: tuple[int, int], computed_only: bool = True) -> int:
    """LSTM / GRU / BLSTM classifiers: the RNN over the image's rows (one step per row), then the fc head on
    one step's features. For the BLSTM's paper head with skip_unused_steps, `computed_only` counts what it
    computes: the lower layers' both directions over every row, the top layer's forward direction over every
    row and ONE reverse step; computed_only=False counts the full bidirectional network."""
    rnn = model.gru if isinstance(model, GRUClassifier) else model.lstm
    skips = isinstance(model, BiLSTMClassifier) and model.head == "paper" and model.skip_unused_steps
    return rnn_macs(rnn, image_shape[0], 1 if skips and computed_only else None) + linear_macs(model.fc)


def feedforward_macs(model: nn.Module, image_shape: tuple[int, int], computed_only: bool = True) -> int:
    """CNN / MLP: every Conv2d at the output size it produces, plus every Linear, once per example."""
    convs = sum(conv2d_macs(conv, size) for conv, size in conv_output_sizes(model, image_shape).items())
    return convs + sum(linear_macs(module) for module in model.modules() if isinstance(module, nn.Linear))


# One function per model family: (built model, image shape, computed_only) -> forward MACs per example.
FORWARD_MACS: dict[type, Callable[..., int]] = {
    LSTMClassifier: recurrent_macs,
    BiLSTMClassifier: recurrent_macs,
    GRUClassifier: recurrent_macs,
    ConvNet: feedforward_macs,
    MLP: feedforward_macs,
}


def forward_macs(model: nn.Module, image_shape: tuple[int, int], computed_only: bool = True) -> int | None:
    """One example's forward MACs (None for a model family without a function in FORWARD_MACS)."""
    count = FORWARD_MACS.get(type(model))
    return None if count is None else count(model, image_shape, computed_only)


def epoch_flops(
    model: nn.Module, image_shape: tuple[int, int], examples: int, computed_only: bool = True
) -> int | None:
    """Training FLOPs of one epoch over `examples` (None for a model family without a MACs function)."""
    macs = forward_macs(model, image_shape, computed_only)
    return None if macs is None else macs * FLOPS_PER_MAC * TRAINING_PASSES * examples


def flop_counts(model: nn.Module, image_shape: tuple[int, int], examples: int) -> dict:
    """What a benchmark records: the epoch's FLOPs as computed, and for the full network (they differ for
    the BLSTM's paper head only), and the forward MACs per example."""
    return {
        "epoch_flops": epoch_flops(model, image_shape, examples),
        "epoch_flops_full": epoch_flops(model, image_shape, examples, computed_only=False),
        "forward_macs_per_example": forward_macs(model, image_shape),
    }
