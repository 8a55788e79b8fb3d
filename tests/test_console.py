"""digitlab.console: the epoch table keeps its columns aligned whatever the numbers."""

from __future__ import annotations

import pytest

from digitlab.console import EpochTable, class_name


def printed(rows: list[dict], has_val: bool = False) -> list[str]:
    lines = []
    table = EpochTable(has_val=has_val, print_line=lines.append)
    table.header()
    for row in rows:
        table.row(row)
    return lines


def row(**changes) -> dict:
    values = {"epoch": 1, "train/loss": 0.39, "train/seconds": 19.2, "eval/seconds": 1.1, "test/loss": 0.1}
    return values | {"test/acc": 0.9679} | changes


@pytest.mark.parametrize("loss", [2.1e13, 3.4e300, 123456789.0])
def test_a_diverging_loss_keeps_the_columns_aligned(loss):
    lines = printed([row(), row(epoch=2, **{"train/loss": loss, "test/loss": loss})])
    assert len({len(line) for line in lines}) == 1, lines
    assert "e+" in lines[2] or "1.23e+08" in lines[2]


def test_ordinary_numbers_keep_their_formats():
    header, line = printed([row()])
    assert line.split() == ["1", "0.3900", "19.20", "1.10", "0.1000", "96.79"]
    assert len(header) == len(line)


def test_class_names_replace_numbers_where_a_dataset_has_them():
    assert class_name(0, ["T-shirt/top", "Trouser"]) == "T-shirt/top"
    assert class_name(7, None) == "7"
