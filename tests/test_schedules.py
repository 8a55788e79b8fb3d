"""digitlab.schedules: each schedule's learning rate at known steps; onecycle against torch's OneCycleLR."""

from __future__ import annotations

import math

import pytest
import torch

from digitlab.schedules import SCHEDULES, learning_rate


def torch_onecycle(lr: float, total: int, warmup: float) -> list[float]:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=total, pct_start=warmup, cycle_momentum=False
    )
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("total, warmup", [(100, 0.25), (37, 0.3), (1000, 0.1)])
def test_onecycle_matches_torch(total, warmup):
    ours = [learning_rate("onecycle", 0.01, step, total, warmup) for step in range(total)]
    assert ours == pytest.approx(torch_onecycle(0.01, total, warmup), rel=1e-9, abs=1e-15)


def test_onecycle_warmup_zero_means_torchs_default():
    assert [learning_rate("onecycle", 0.01, s, 50, 0.0) for s in range(50)] == pytest.approx(
        torch_onecycle(0.01, 50, 0.25)
    )


def test_cosine_known_values():
    lr, total = 0.1, 100  # 10 warm-up steps, then 90 steps of cosine to 0
    assert learning_rate("cosine", lr, 0, total, 0.1) == pytest.approx(0.01)
    assert learning_rate("cosine", lr, 9, total, 0.1) == pytest.approx(0.1)
    assert learning_rate("cosine", lr, 10, total, 0.1) == pytest.approx(0.1)
    assert learning_rate("cosine", lr, 55, total, 0.1) == pytest.approx(0.05)  # half-way down
    assert learning_rate("cosine", lr, 99, total, 0.1) == pytest.approx(lr / 2 * (1 + math.cos(math.pi * 89 / 90)))
    assert learning_rate("cosine", lr, 0, total, 0.0) == pytest.approx(0.1)  # no warm-up


def test_constant_is_the_rate():
    assert {learning_rate("constant", 0.003, s, 10) for s in range(10)} == {0.003}


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_stays_positive_and_at_most_lr(name):
    rates = [learning_rate(name, 0.01, step, 64, 0.2) for step in range(64)]
    assert all(0 <= rate <= 0.01 + 1e-12 for rate in rates)
    assert rates[0] > 0
