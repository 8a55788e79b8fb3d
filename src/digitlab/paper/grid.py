"""Su (2018)'s experiments as plain grids of TrainConfigs: nothing here reads or writes a file.

Holds the paper's settings (PAPER_TABLES, TABLE_ROWS, FIGURE3_*, LR_GRID, VAL_SIZE, QUICK), the experiment
names (EXPERIMENTS, expand), one grid cell (Cell, cell_name), the cells of a table and of Figure 3
(table_cells, figure3_cells), a whole plan (plan), the order shards split it in (shard_order), and a rough
time for a cell (SECONDS_PER_EXAMPLE, estimate_seconds). Running the cells is paper.cells' job.
"""

from __future__ import annotations

from dataclasses import dataclass

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError

PAPER_TABLES = {"table2": (1000, 4), "table3": (640, 8), "table4": (500, 12)}  # batch size, epochs
TABLE_ROWS = (("lstm", "paper"), ("blstm", "paper"), ("blstm", "final"))  # (model, BLSTM head)
FIGURE3_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
FIGURE3_BATCH, FIGURE3_EPOCHS = 1000, 3  # the paper gives no batch size for Figure 3; Table 2's is used
LR_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # the tuned panel's search, on a validation split
VAL_SIZE = 10_000
QUICK = {"train_limit": 2000, "test_limit": 500}  # --quick: a slice of the data, for smoke tests and CI
EXPERIMENTS = ("table2", "table3", "table4", "figure3")
# Measured seconds per training example on a 2-core CPU (fp32, batch 500) of the models the cells train: the
# LSTM (tables and Figure 3) and the BLSTM with each head (TABLE_ROWS). No cell trains another model.
SECONDS_PER_EXAMPLE = {"lstm": 1.4e-4, "blstm-paper": 3.0e-4, "blstm-final": 4.5e-4}


@dataclass(frozen=True)
class Cell:
    name: str  # folder name under OUT/cells/
    experiment: str  # table2, table3, table4 or figure3
    role: str  # "table", "fixed" (Figure 3 at lr 0.001), "select" (lr search), "tuned" (best lr)
    config: TrainConfig


def cell_name(config: TrainConfig, role: str) -> str:
    head = f"-{config.blstm_head}" if config.model == "blstm" else ""
    val = f"-val{config.val_size}" if config.val_size else ""
    return (
        f"{role}-{config.model}{head}-{config.optimizer}-lr{config.lr:g}-b{config.batch_size}"
        f"-e{config.epochs}{val}-s{config.seed}"
    )


def _cell(experiment: str, role: str, base: TrainConfig, **settings) -> Cell:
    config = base.replace(**settings)
    return Cell(cell_name(config, role), experiment, role, config)


def table_cells(name: str, base: TrainConfig, seeds: list[int]) -> list[Cell]:
    batch_size, epochs = PAPER_TABLES[name]
    return [
        _cell(
            name,
            "table",
            base,
            model=model,
            blstm_head=head,
            optimizer="adam",
            lr=0.001,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
        )
        for seed in seeds
        for model, head in TABLE_ROWS
    ]


def figure3_cells(base: TrainConfig, seeds: list[int], best_lr: dict[str, float] | None) -> list[Cell]:
    """Fixed-lr and lr-search cells; the tuned cells once `best_lr` (from the search) is known."""
    common = dict(model="lstm", batch_size=FIGURE3_BATCH, epochs=FIGURE3_EPOCHS)
    cells = [
        _cell("figure3", "fixed", base, optimizer=name, lr=0.001, seed=seed, **common)
        for seed in seeds
        for name in FIGURE3_OPTIMIZERS
    ]
    # The search uses the first seed only and a validation split: the test set never picks a setting.
    val_size = VAL_SIZE if not base.train_limit else base.train_limit // 5  # quick runs hold out a fifth
    cells += [
        _cell("figure3", "select", base, optimizer=name, lr=lr, seed=seeds[0], val_size=val_size, **common)
        for name in FIGURE3_OPTIMIZERS
        for lr in LR_GRID
    ]
    if best_lr is not None:
        cells += [
            _cell("figure3", "tuned", base, optimizer=name, lr=best_lr[name], seed=seed, **common)
            for seed in seeds
            for name in FIGURE3_OPTIMIZERS
        ]
    return cells


def expand(names: list[str]) -> list[str]:
    chosen = []
    for name in names:
        if name == "all":
            chosen += list(EXPERIMENTS)
        elif name in EXPERIMENTS:
            chosen.append(name)
        else:
            raise ConfigError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)} or all")
    return list(dict.fromkeys(chosen))


def plan(names: list[str], base: TrainConfig, seeds: list[int], best_lr: dict[str, float] | None) -> list[Cell]:
    """The cells of the experiments `names`, in order; Figure 3's tuned ones only once `best_lr` is known."""
    cells = []
    for name in names:
        if name == "figure3":
            cells += figure3_cells(base, seeds, best_lr)
        else:
            cells += table_cells(name, base, seeds)
    return cells


def shard_order(cells: list[Cell]) -> list[Cell]:
    """The plan's order with figure3's tuned cells last: the order shards split, so that the tuned cells, which
    appear once the search has finished, leave every other cell in the shard it had before."""
    return [c for c in cells if c.role != "tuned"] + [c for c in cells if c.role == "tuned"]


def estimate_seconds(cell: Cell, examples: int) -> float:
    """A rough time for a cell that trains on `examples` examples per epoch (SECONDS_PER_EXAMPLE)."""
    head = f"-{cell.config.blstm_head}" if cell.config.model == "blstm" else ""
    return cell.config.epochs * examples * SECONDS_PER_EXAMPLE[cell.config.model + head]
