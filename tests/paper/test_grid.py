"""The experiments' grids (digitlab.paper.grid): what each experiment plans, and a time for every planned cell."""

from __future__ import annotations

import pytest

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError
from digitlab.paper.grid import (
    EXPERIMENTS,
    FIGURE3_OPTIMIZERS,
    SECONDS_PER_EXAMPLE,
    estimate_seconds,
    expand,
    plan,
)

BEST_LR = dict.fromkeys(FIGURE3_OPTIMIZERS, 0.01)


def test_a_whole_plan_counts_the_paper_cells():
    cells = plan(list(EXPERIMENTS), TrainConfig(progress="none"), [0, 1], BEST_LR)
    assert len(cells) == 3 * 3 * 2 + 4 * 2 + 4 * 7 + 4 * 2  # tables' rows, Figure 3's fixed, search and tuned
    assert len({cell.name for cell in cells}) == len(cells)
    assert not any(c.role == "tuned" for c in plan(["figure3"], TrainConfig(), [0], None))


def test_every_planned_cell_has_a_time_and_every_cost_is_used():
    cells = plan(list(EXPERIMENTS), TrainConfig(progress="none"), [0], BEST_LR)
    assert all(estimate_seconds(cell, 50_000) > 0 for cell in cells)
    used = {c.config.model + (f"-{c.config.blstm_head}" if c.config.model == "blstm" else "") for c in cells}
    assert used == set(SECONDS_PER_EXAMPLE)


def test_expand_takes_all_and_refuses_unknown_names():
    assert expand(["table3", "all", "table3"]) == ["table3", "table2", "table4", "figure3"]  # in order, once each
    with pytest.raises(ConfigError, match="unknown experiment 'table9'"):
        expand(["table9"])
