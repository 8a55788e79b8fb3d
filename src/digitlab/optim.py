"""OPTIMIZERS: name -> function(parameters, lr) building a torch.optim optimizer.

The first four carry Su (2018)'s settings; adding one is one function and one line in the dict.
"""

from __future__ import annotations

import torch


def sgd(parameters, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=lr)


def momentum(parameters, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=lr, momentum=0.8)


def rmsprop(parameters, lr: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(parameters, lr=lr, alpha=0.9)


def adam(parameters, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.99))


def adamw(parameters, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=lr)  # torch's defaults: betas (0.9, 0.999), weight decay 0.01


OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "rmsprop": rmsprop, "adam": adam, "adamw": adamw}
