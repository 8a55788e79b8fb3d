"""OPTIMIZERS: name -> function(parameters, lr, weight_decay) building a torch.optim optimizer, one function each.

sgd, momentum, rmsprop and adam carry Su (2018)'s settings; adamw has torch's defaults.

Adding one is one function and one line in the dict: `--optimizer`'s help and validation (digitlab.config) read
the dict, and tests/test_optim.py checks every entry's contract. weight_decay None keeps each optimizer's own
default (0, or adamw's 0.01).
"""

from __future__ import annotations

import torch


def sgd(parameters, lr: float, weight_decay: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=lr, weight_decay=weight_decay or 0.0)


def momentum(parameters, lr: float, weight_decay: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=lr, momentum=0.8, weight_decay=weight_decay or 0.0)


def rmsprop(parameters, lr: float, weight_decay: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(parameters, lr=lr, alpha=0.9, weight_decay=weight_decay or 0.0)


def adam(parameters, lr: float, weight_decay: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.99), weight_decay=weight_decay or 0.0)


def adamw(parameters, lr: float, weight_decay: float | None = None) -> torch.optim.Optimizer:
    # torch's defaults: betas (0.9, 0.999), decoupled weight decay 0.01
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01 if weight_decay is None else weight_decay)


OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "rmsprop": rmsprop, "adam": adam, "adamw": adamw}
