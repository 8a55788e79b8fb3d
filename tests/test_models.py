"""digitlab.models: every model's shapes and gradients, the BLSTM heads, building from settings or a config, and
the state_dict keys saved runs hold."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from digitlab import models
from digitlab.models import MODELS, build, count_parameters, uses_batch_statistics

SIZES = [(28, 28), (12, 16)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small(name: str, shape, classes: int = 10, **kwargs) -> nn.Module:
    return build(name, shape, classes, hidden_size=kwargs.pop("hidden_size", 12), **kwargs)


@pytest.mark.parametrize("shape", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(MODELS))
def test_output_shape(name, shape):
    model = small(name, shape, classes=7)
    for batch in (1, 5):
        # Batch norm cannot train on one example (no spread to normalise by); it classifies one in eval mode.
        model.train(not (batch == 1 and uses_batch_statistics(model)))
        logits = model(torch.randn(batch, *shape))
        assert logits.shape == (batch, 7)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("shape", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(MODELS))
def test_backward_reaches_every_parameter(name, shape):
    model = small(name, shape)
    model.train()
    logits = model(torch.randn(4, *shape))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    params = dict(model.named_parameters())
    assert params
    for param_name, param in params.items():
        assert param.grad is not None, f"{name}: {param_name} got no gradient"
        assert param.grad.shape == param.shape
        assert torch.isfinite(param.grad).all(), param_name
    # Only the paper BLSTM head has weights its output cannot depend on (see test_blstm_paper_head_*).
    zero = [n for n, p in params.items() if not p.grad.any()]
    if name == "blstm":
        assert set(zero) <= {f"lstm.weight_hh_l{model.lstm.num_layers - 1}_reverse"}, zero
    else:
        assert zero == []


@pytest.mark.parametrize("name", list(MODELS))
def test_eval_mode_is_deterministic_and_batch_independent(name):
    model = small(name, (28, 28), dropout=0.3).eval()
    images = torch.randn(6, 28, 28)
    together = model(images)
    alone = torch.cat([model(images[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model(images), together, rtol=0, atol=0)


# --- the BLSTM heads ----------------------------------------------------------------------------------


def _paper_reference(model, images):
    out, _ = model.lstm(images)  # (B, H, 2*hidden)
    return model.fc(out[:, -1, :])


def _final_reference(model, images):
    _, (h_n, _) = model.lstm(images)  # (layers*2, B, hidden)
    return model.fc(torch.cat([h_n[-2], h_n[-1]], dim=1))


@pytest.mark.parametrize(
    "shape, num_layers", [((28, 28), 2), ((12, 16), 1), ((12, 16), 3)], ids=["28x28-2", "12x16-1", "12x16-3"]
)
def test_blstm_paper_head_is_fc_of_last_output(shape, num_layers):
    model = build("blstm", shape, 10, hidden_size=8, num_layers=num_layers, head="paper")
    images = torch.randn(5, *shape)
    for mode in (model.eval, model.train):  # no dropout: both modes compute the same function
        mode()
        torch.testing.assert_close(model(images), _paper_reference(model, images), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_blstm_paper_head_gradients_match_reference(num_layers):
    model = build("blstm", (28, 28), 10, hidden_size=8, num_layers=num_layers, head="paper").train()
    images, labels = torch.randn(6, 28, 28), torch.arange(6)

    def grads(forward):
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(forward(images), labels).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    got, expected = grads(model), grads(lambda x: _paper_reference(model, x))
    assert got.keys() == expected.keys()
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
    # The reverse direction is read after one step from a zero state: its top recurrent weights never matter.
    top = f"lstm.weight_hh_l{num_layers - 1}_reverse"
    assert not expected[top].any()


def test_blstm_final_head_uses_h_n():
    model = build("blstm", (28, 28), 10, hidden_size=8, num_layers=2, head="final").eval()
    images = torch.randn(5, 28, 28)
    torch.testing.assert_close(model(images), _final_reference(model, images), rtol=1e-5, atol=1e-6)


def test_blstm_heads_differ_only_in_the_reverse_half():
    paper = build("blstm", (28, 28), 10, hidden_size=8, num_layers=2, head="paper").eval()
    final = build("blstm", (28, 28), 10, hidden_size=8, num_layers=2, head="final").eval()
    final.load_state_dict(paper.state_dict())  # same weights; the head is not a weight
    images = torch.randn(5, 28, 28)
    out, (h_n, _) = paper.lstm(images)
    hidden = 8
    # Forward direction: the last output is the final state. Reverse: the final state is at position 0.
    torch.testing.assert_close(out[:, -1, :hidden], h_n[-2])
    torch.testing.assert_close(out[:, 0, hidden:], h_n[-1])
    assert not torch.allclose(out[:, -1, hidden:], h_n[-1])
    assert not torch.allclose(paper(images), final(images))


def test_blstm_heads():
    assert models.BLSTM_HEADS == ("paper", "final")


def test_blstm_rejects_unknown_head():
    with pytest.raises(ValueError, match="head"):
        build("blstm", (28, 28), 10, head="middle")


def test_build_passes_head_only_to_models_that_take_it():
    for name in MODELS:
        build(name, (28, 28), 10, hidden_size=4, head="final")  # no TypeError for models without a head


# --- build() and its sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lstm", "blstm", "gru"])
def test_build_honours_recurrent_sizes(name):
    model = build(name, (12, 16), 10, hidden_size=24, num_layers=3)
    rnn = next(m for m in model.modules() if isinstance(m, nn.RNNBase))
    assert (rnn.input_size, rnn.hidden_size, rnn.num_layers) == (16, 24, 3)
    assert rnn.batch_first
    assert rnn.bidirectional == (name == "blstm")


@pytest.mark.parametrize("name", ["lstm", "blstm", "gru"])
def test_build_without_sizes_takes_the_models_defaults(name):
    default = build(name, (12, 16), 10)
    rnn = next(m for m in default.modules() if isinstance(m, nn.RNNBase))
    assert (rnn.hidden_size, rnn.num_layers) == (MODELS[name].default_hidden_size, MODELS[name].default_num_layers)


def test_build_honours_mlp_sizes():
    model = build("mlp", (12, 16), 10, hidden_size=24, num_layers=3)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(192, 24), (24, 24), (24, 24), (24, 10)]


def test_build_honours_cnn_hidden_size():
    model = build("cnn", (12, 16), 10, hidden_size=24)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(64 * 3 * 4, 24), (24, 10)]


def test_cnn_accepts_its_own_depth():
    assert count_parameters(build("cnn", (28, 28), 10, num_layers=2)) == count_parameters(build("cnn", (28, 28), 10))


def test_cnn_rejects_other_depths():
    with pytest.raises(ValueError, match="2"):
        build("cnn", (28, 28), 10, num_layers=3)


@pytest.mark.parametrize("name", list(MODELS))
def test_hidden_size_changes_parameter_count(name):
    assert count_parameters(build(name, (28, 28), 10, hidden_size=8)) < count_parameters(
        build(name, (28, 28), 10, hidden_size=16)
    )


def test_paper_lstm_has_the_papers_size():
    # Su (2018): 2 stacked LSTM layers of 128 units over 28 rows of 28 pixels, a 10-way linear layer.
    model = build("lstm", (28, 28), 10)
    layer = lambda inputs: 4 * 128 * (inputs + 128) + 2 * 4 * 128  # noqa: E731 - weights + both biases
    assert count_parameters(model) == layer(28) + layer(128) + 128 * 10 + 10


def test_dropout_is_passed_on():
    model = build("lstm", (28, 28), 10, hidden_size=8, num_layers=2, dropout=0.25)
    assert model.lstm.dropout == 0.25
    mlp = build("mlp", (28, 28), 10, hidden_size=8, dropout=0.25)
    assert [m.p for m in mlp.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]


def test_model_settings_are_the_configs_model_fields():
    import dataclasses

    from digitlab.config import TrainConfig

    model_group = [f.name for f in dataclasses.fields(TrainConfig) if f.metadata["group"] == "model"]
    assert list(models.ModelSettings._fields) == model_group


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_builds_itself_from_a_config(name):
    from digitlab.config import TrainConfig

    config = TrainConfig(model=name, hidden_size=8, num_layers=2, dropout=0.1)
    torch.manual_seed(0)
    from_config = models.build_from_config(config, (12, 16), 4)
    torch.manual_seed(0)
    built = build(name, (12, 16), 4, hidden_size=8, num_layers=2, dropout=0.1)
    assert type(from_config) is MODELS[name] is type(MODELS[name].from_config(config, (12, 16), 4))
    assert from_config.state_dict().keys() == built.state_dict().keys()
    for key, value in from_config.state_dict().items():
        assert torch.equal(value, built.state_dict()[key]), key


@pytest.mark.parametrize("name", [name for name in MODELS if not issubclass(MODELS[name], models.VGGNet)])
def test_channels_are_refused_by_models_without_convolution_blocks(name):
    with pytest.raises(ValueError) as refusal:
        build(name, (28, 28), 10, channels=8)
    assert str(refusal.value) == f"--channels sizes convolution blocks (vgg, speedcnn); the {name} model has none"


@pytest.mark.parametrize("blocks, convolutions", [(1, [1]), (2, [1, 1]), (3, [1, 2, 1]), (4, [1, 2, 2, 1])])
def test_speedcnn_convolves_once_at_the_largest_and_smallest_size_and_twice_between(blocks, convolutions):
    model = build("speedcnn", (28, 28), 10, num_layers=blocks, channels=4)
    widths = [layer.out_channels for layer in model.features if isinstance(layer, nn.Conv2d)]
    assert widths == [4 * 2**block for block, count in enumerate(convolutions) for _ in range(count)]


def test_speedcnn_runs_channels_last_and_gives_what_the_same_weights_give_in_nchw():
    model = build("speedcnn", (28, 28), 10).eval()
    convolutions = [layer for layer in model.modules() if isinstance(layer, nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convolutions)
    assert not convolutions[1].weight.is_contiguous()  # really channels-last, not a layout both formats share
    nchw = build("speedcnn", (28, 28), 10).eval().to(memory_format=torch.contiguous_format)
    nchw.load_state_dict(model.state_dict())
    images = torch.randn(3, 28, 28)
    torch.testing.assert_close(model(images), nchw(images), rtol=1e-4, atol=1e-4)


def test_build_from_config_uses_the_config():
    from digitlab.config import TrainConfig

    config = TrainConfig(model="blstm", hidden_size=6, num_layers=1, blstm_head="final")
    model = models.build_from_config(config, (10, 9), 4)
    assert isinstance(model, models.BiLSTMClassifier)
    assert model.head == "final"
    assert (model.lstm.input_size, model.lstm.hidden_size, model.lstm.num_layers) == (9, 6, 1)
    assert model.fc.out_features == 4


# --- what saved runs hold ----------------------------------------------------------------------------

# Each model's state_dict keys at its default sizes, as old run directories and src/digitlab/default_model/ hold
# them: a renamed attribute renames its keys, and those runs stop loading. A new model pins its keys here.
_LSTM_LAYER = "weight_ih_l{0} weight_hh_l{0} bias_ih_l{0} bias_hh_l{0}"
_BN = "weight bias running_mean running_var num_batches_tracked"
STATE_DICT_KEYS = {
    "lstm": [f"lstm.{k.format(n)}" for n in (0, 1) for k in _LSTM_LAYER.split()] + ["fc.weight", "fc.bias"],
    "blstm": [f"lstm.{k.format(n)}{d}" for n in (0, 1) for d in ("", "_reverse") for k in _LSTM_LAYER.split()]
    + ["fc.weight", "fc.bias"],
    "gru": [f"gru.{k.format(n)}" for n in (0, 1) for k in _LSTM_LAYER.split()] + ["fc.weight", "fc.bias"],
    "cnn": "conv1.weight conv1.bias conv2.weight conv2.bias fc1.weight fc1.bias fc2.weight fc2.bias".split(),
    "vgg": [f"features.{conv}.weight" if part == "conv" else f"features.{conv + 1}.{part}"
            for conv in (0, 3, 7, 10) for part in ["conv", *_BN.split()]]
    + ["hidden.0.weight"] + [f"hidden.1.{part}" for part in _BN.split()] + ["fc.weight", "fc.bias"],
    "speedcnn": [f"features.{conv}.weight" if part == "conv" else f"features.{conv + 1}.{part}"
                 for conv in (0, 4, 7, 11) for part in ["conv", *_BN.split()]]
    + ["hidden.0.weight"] + [f"hidden.1.{part}" for part in _BN.split()] + ["fc.weight", "fc.bias"],
    "mlp": "body.0.weight body.0.bias body.3.weight body.3.bias fc.weight fc.bias".split(),
}  # fmt: skip


@pytest.mark.parametrize("name", list(MODELS))
def test_state_dict_keys_are_those_saved_runs_hold(name):
    assert name in STATE_DICT_KEYS, f"pin the {name} model's state_dict keys in STATE_DICT_KEYS"
    assert list(build(name, (28, 28), 10).state_dict()) == STATE_DICT_KEYS[name]
