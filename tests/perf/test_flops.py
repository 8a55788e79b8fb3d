"""digitlab.perf.flops: forward multiply-adds of each model family against hand counts."""

from __future__ import annotations

import pytest
from torch import nn

from digitlab.models import build
from digitlab.perf import flops


def test_lstm_macs_match_a_hand_count():
    """Input 4, hidden 3, 1 layer, 5 steps: 4 gates x 3 x (4 + 3) = 84 MACs a step; then a 3 -> 2 head."""
    model = build("lstm", (5, 4), 2, hidden_size=3, num_layers=1)
    assert flops.rnn_macs(model.lstm, 5) == 5 * 84 == 420
    assert flops.recurrent_macs(model, (5, 4)) == flops.forward_macs(model, (5, 4)) == 420 + 3 * 2
    assert flops.epoch_flops(model, (5, 4), examples=10) == (420 + 6) * 2 * 3 * 10


def test_stacked_lstm_layers_read_the_layer_below():
    """A plain nn.LSTM, 2 layers: the second reads the first's hidden state (3 wide), not the input."""
    lstm = nn.LSTM(4, 3, num_layers=2)
    assert flops.rnn_macs(lstm, 7) == 7 * (4 * 3 * (4 + 3) + 4 * 3 * (3 + 3))


def test_blstm_counts_only_what_the_paper_head_computes():
    """Input 4, hidden 3, 2 layers, 5 steps. Layer 1: 84 MACs a step and direction; layer 2 reads both
    directions (6 wide): 4 x 3 x (6 + 3) = 108. Head 6 -> 2."""
    paper = build("blstm", (5, 4), 2, hidden_size=3, num_layers=2, head="paper")
    full = 2 * 5 * 84 + 2 * 5 * 108 + 12
    computed = 2 * 5 * 84 + 5 * 108 + 1 * 108 + 12  # top layer: 5 forward steps, ONE reverse step
    assert flops.recurrent_macs(paper, (5, 4)) == computed
    assert flops.recurrent_macs(paper, (5, 4), computed_only=False) == full
    assert flops.rnn_macs(paper.lstm, 5, top_reverse_steps=1) == computed - 12
    final = build("blstm", (5, 4), 2, hidden_size=3, num_layers=2, head="final")  # runs the whole nn.LSTM
    assert flops.recurrent_macs(final, (5, 4)) == full
    paper.skip_unused_steps = False
    assert flops.recurrent_macs(paper, (5, 4)) == full


def test_gru_has_three_gate_blocks():
    model = build("gru", (5, 4), 2, hidden_size=3, num_layers=1)
    assert flops.recurrent_macs(model, (5, 4)) == 5 * 3 * 3 * (4 + 3) + 3 * 2


def test_conv_macs_use_each_convolutions_output_size():
    """An 8x8 image: conv1 (1 -> 32, 5x5, padding 2) gives 8x8; pooled to 4x4, conv2 (32 -> 64) gives 4x4;
    pooled to 2x2, fc1 64*2*2 -> 5, fc2 5 -> 3."""
    model = build("cnn", (8, 8), 3, hidden_size=5)
    assert flops.conv_output_sizes(model, (8, 8)) == {model.conv1: (8, 8), model.conv2: (4, 4)}
    conv1, conv2 = 32 * 1 * 5 * 5 * 8 * 8, 64 * 32 * 5 * 5 * 4 * 4
    assert flops.conv2d_macs(model.conv2, (4, 4)) == conv2
    assert flops.feedforward_macs(model, (8, 8)) == conv1 + conv2 + 64 * 2 * 2 * 5 + 5 * 3
    assert flops.epoch_flops(model, (8, 8), 7) == (conv1 + conv2 + 1280 + 15) * 6 * 7


def test_grouped_strided_conv():
    """8 -> 4 channels in 2 groups (each output channel sees 4 inputs), 3x3 kernel, stride 2 on 9x9: 4x4 out."""
    conv = nn.Conv2d(8, 4, kernel_size=3, stride=2, groups=2)
    assert flops.conv2d_macs(conv, (4, 4)) == 4 * 4 * 3 * 3 * 4 * 4


def test_mlp_counts_every_linear_layer():
    mlp = build("mlp", (8, 8), 3, hidden_size=5, num_layers=2)
    assert flops.feedforward_macs(mlp, (8, 8)) == 64 * 5 + 5 * 5 + 5 * 3


def test_flop_counts_and_unknown_models():
    paper = build("blstm", (5, 4), 2, hidden_size=3, num_layers=2)
    counts = flops.flop_counts(paper, (5, 4), examples=10)
    assert counts["forward_macs_per_example"] == flops.recurrent_macs(paper, (5, 4))
    assert counts["epoch_flops"] == counts["forward_macs_per_example"] * 6 * 10 < counts["epoch_flops_full"]
    unknown = nn.Sequential(nn.Flatten(), nn.Linear(20, 2))
    assert flops.forward_macs(unknown, (5, 4)) is None and flops.epoch_flops(unknown, (5, 4), 10) is None
    with pytest.raises(ValueError, match="proj_size"):
        flops.rnn_macs(nn.LSTM(4, 3, proj_size=2), 5)
