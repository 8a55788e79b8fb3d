"""digitlab.optim: every registered optimizer keeps the (parameters, lr, weight_decay) contract and steps; the
shipped ones carry the settings of Su (2018) (adamw: torch's defaults), pinned here by hand."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from digitlab.optim import OPTIMIZERS

LR = 0.001  # the paper's learning rate for every optimizer

# What each shipped name must build, written out by hand. An optimizer added to OPTIMIZERS needs no line here:
# the tests over OPTIMIZERS check its contract.
EXPECTED = {
    "sgd": lambda params: torch.optim.SGD(params, lr=LR),
    "momentum": lambda params: torch.optim.SGD(params, lr=LR, momentum=0.8),
    "rmsprop": lambda params: torch.optim.RMSprop(params, lr=LR, alpha=0.9),
    "adam": lambda params: torch.optim.Adam(params, lr=LR, betas=(0.9, 0.99)),
    "adamw": lambda params: torch.optim.AdamW(params, lr=LR),
}

# The settings that matter, spelled out (so a change in torch's defaults cannot hide a change here).
PAPER_SETTINGS = {
    "sgd": (torch.optim.SGD, {"lr": LR, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False}),
    "momentum": (torch.optim.SGD, {"lr": LR, "momentum": 0.8, "dampening": 0, "weight_decay": 0, "nesterov": False}),
    "rmsprop": (
        torch.optim.RMSprop,
        {"lr": LR, "alpha": 0.9, "eps": 1e-8, "momentum": 0, "centered": False, "weight_decay": 0},
    ),
    "adam": (torch.optim.Adam, {"lr": LR, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0, "amsgrad": False}),
    "adamw": (
        torch.optim.AdamW,
        {"lr": LR, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
    ),
}


def test_the_shipped_optimizers_are_registered():
    assert set(EXPECTED) == set(PAPER_SETTINGS) <= set(OPTIMIZERS)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def _settings(optimizer: torch.optim.Optimizer) -> list[dict]:
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_settings_equal_hand_built_optimizer(name):
    model = _model()
    built = OPTIMIZERS[name](model.parameters(), LR)
    reference = EXPECTED[name](model.parameters())
    assert type(built) is type(reference)
    assert _settings(built) == _settings(reference)
    cls, settings = PAPER_SETTINGS[name]
    assert type(built) is cls
    group = built.param_groups[0]
    for key, value in settings.items():
        assert group[key] == pytest.approx(value), key


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_it_optimises_the_parameters_it_is_given(name):
    model = _model()
    built = OPTIMIZERS[name](model.parameters(), LR)
    assert isinstance(built, torch.optim.Optimizer)
    assert [p for g in built.param_groups for p in g["params"]] == list(model.parameters())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_lr_argument_is_used(name):
    built = OPTIMIZERS[name](_model().parameters(), 0.0375)
    assert [g["lr"] for g in built.param_groups] == [0.0375]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_weight_decay_argument_is_used(name):
    built = OPTIMIZERS[name](_model().parameters(), LR, weight_decay=0.0375)
    assert [g["weight_decay"] for g in built.param_groups] == [0.0375]


def _five_steps(model: nn.Module, optimizer) -> None:
    """Five steps on seeded random batches, the same for every optimizer."""
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        optimizer.zero_grad()
        x, y = torch.randn(8, 6, generator=generator), torch.randint(0, 3, (8,), generator=generator)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_steps_change_the_weights(name):
    model = _model()
    before = copy.deepcopy(model.state_dict())
    _five_steps(model, OPTIMIZERS[name](model.parameters(), LR))
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_steps_match_hand_built_optimizer(name):
    ours, theirs = _model(), _model()
    theirs.load_state_dict(ours.state_dict())
    opt_ours = OPTIMIZERS[name](ours.parameters(), LR)
    opt_theirs = EXPECTED[name](theirs.parameters())
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(8, 6, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        for model, optimizer in ((ours, opt_ours), (theirs, opt_theirs)):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), key


def test_optimizers_differ_from_each_other():
    # Five steps under each optimizer from the same start: no two end at the same weights.
    results = {}
    for name, build in OPTIMIZERS.items():
        model = _model()
        _five_steps(model, build(model.parameters(), LR))
        results[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.equal(results[a], results[b]), (a, b)
