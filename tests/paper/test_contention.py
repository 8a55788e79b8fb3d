"""Timings under CPU contention (digitlab.paper.contention) on hand-made records: which cells are marked in
the per-table and summary tables, the report's list of them, and moving a cell aside."""

from __future__ import annotations

import json

import pytest

from digitlab.errors import RunError
from digitlab.paper import contention
from digitlab.paper.contention import MARK, THRESHOLD
from digitlab.paper.report import paper_tables
from digitlab.paper.sections import claims, key_table, table_section, table_series
from digitlab.store import lock, rundir

PAPER = paper_tables()


def record(model: str, seconds: float, pressures: list, head: str = "paper", finished: bool = True) -> dict:
    """A Table 2 cell (seed 0) as report.collect() reads it, with these CPU pressures at its 4 epoch ends."""
    return {
        "cell": f"table-{model}-{head}-s0",
        "role": "table",
        "config": {"model": model, "blstm_head": head, "batch_size": 1000, "epochs": 4, "seed": 0},
        "finished": finished,
        "diverged": False,
        "epochs": [
            {"epoch": epoch + 1, "test/acc": 0.9, "train/seconds": seconds, "eval/seconds": 0.5}
            | ({} if pressure == "absent" else {"cpu_pressure_avg10": pressure})
            for epoch, pressure in enumerate(pressures)
        ],
    }


QUIET = [0.0, 2.5, None, "absent"]  # low, null (no /proc/pressure) and missing (older rows): none counts
BUSY = [0.0, THRESHOLD + 40, 3.0, 1.0]  # epoch 2 ran while others waited for a CPU


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_a_cell_is_contended_when_any_epoch_is_above_the_threshold():
    assert not contention.contended(record("lstm", 10.0, QUIET)["epochs"])
    assert contention.contended(record("lstm", 10.0, BUSY)["epochs"])
    assert not contention.contended(record("lstm", 10.0, [THRESHOLD] * 4)["epochs"])  # above, not at


def test_per_table_marks_the_contended_epoch_of_the_busy_cell_only(tmp_path):
    records = [record("lstm", 10.0, QUIET), record("blstm", 30.0, BUSY)]
    lines, _ = table_section("table2", records, PAPER, tmp_path)
    rows = [cells(line) for line in lines if line.startswith("| ") and cells(line)[0].isdigit()]
    # epoch, our seconds (lstm, blstm-paper), ...
    assert [row[1:3] for row in rows] == [
        ["10.0", "30.0"],
        ["10.0", f"30.0 {MARK}"],
        ["10.0", "30.0"],
        ["10.0", "30.0"],
    ]


def test_summary_marks_the_busy_row_only():
    rows = [cells(line) for line in key_table([record("lstm", 10.0, QUIET), record("blstm", 30.0, BUSY)], PAPER)]
    seconds = {row[1]: row[5] for row in rows if row[0] == "table2"}
    assert seconds == {"lstm": "10.0", "blstm-paper": f"30.0 {MARK}"}


def test_claim_1_says_when_its_timings_ran_under_contention():
    quiet = claims(table_series([record("lstm", 10.0, QUIET), record("blstm", 30.0, QUIET)], 1000, 4), {})
    busy = claims(table_series([record("lstm", 10.0, QUIET), record("blstm", 30.0, BUSY)], 1000, 4), {})
    assert "contention" not in quiet[1] and f"timings under contention, {MARK}" in busy[1]


def test_report_paragraph_states_the_threshold_and_lists_the_busy_cells():
    records = [
        record("lstm", 10.0, QUIET),
        record("blstm", 30.0, BUSY),
        record("blstm", 30.0, BUSY, head="final", finished=False),  # unfinished: in no table, not listed
    ]
    lines = contention.explanation(records)
    text = "\n".join(lines)
    assert text.count(f"{THRESHOLD:g}%") == 2  # the rule, and the one listed cell's line
    assert "1 table cell ran under contention" in text
    assert "- `table-blstm-paper-s0`: 1 of 4 epochs above 10%, highest 50.0%" in lines
    assert "table-lstm" not in text
    assert "No table cell ran under contention." in contention.explanation([record("lstm", 10.0, QUIET)])


def test_move_aside_keeps_the_folder_and_numbers_each_retiming(tmp_path):
    out = tmp_path / "out"
    for n in (1, 2):
        cell = out / "cells" / "table-x"
        cell.mkdir(parents=True)
        (cell / rundir.METRICS).write_text(json.dumps({"epoch": 1}) + "\n")
        assert contention.move_aside(cell, out) == out / "retimed" / f"table-x-{n}"
        assert not cell.exists() and (out / "retimed" / f"table-x-{n}" / rundir.METRICS).exists()


def test_move_aside_is_refused_while_the_cell_trains(tmp_path):
    cell = tmp_path / "out" / "cells" / "table-x"
    with lock.holding(cell):
        with pytest.raises(RunError, match="is training in it"):
            contention.move_aside(cell, tmp_path / "out")
    assert cell.is_dir()
