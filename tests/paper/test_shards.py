"""`digitlab reproduce --shard K/N` (and Slurm array tasks): shards split a grid so that each cell runs exactly
once, two shards may run at once on one folder, and `digitlab report` builds the report from all shards' cells."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading

import pytest

from digitlab.cli import main
from digitlab.config import TrainConfig
from digitlab.paper.cells import unfinished
from digitlab.paper.grid import FIGURE3_OPTIMIZERS, figure3_cells, shard_order, table_cells
from digitlab.paper.manifest import MANIFEST, update_manifest
from digitlab.shard import Shard
from digitlab.store import rundir
from digitlab.store.files import read_json, read_rows
from helpers import write_dataset

PREFIXES = ("table-", "fixed-", "select-", "tuned-")


def listed_cells(text: str) -> list[str]:
    """The cell names a --dry-run printed."""
    return [line.split()[0] for line in text.splitlines() if line.startswith(PREFIXES)]


def run_main(args: list[str]) -> tuple[int, str]:
    """main(args) with what it printed on stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(args)
    return code, buffer.getvalue()


def test_dry_run_shards_cover_the_grid_exactly_once(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["reproduce", "all", "--seeds", "2", "--dry-run", "--out", str(out)]
    assert main(base) == 0
    everything = listed_cells(capsys.readouterr().out)
    assert len(everything) == 2 * 9 + 2 * 4 + 28  # three tables' rows and Figure 3's fixed and search cells
    shares = []
    for k in (1, 2, 3):
        assert main([*base, "--shard", f"{k}/3"]) == 0
        printed = capsys.readouterr().out
        assert printed.splitlines()[0].startswith(f"shard {k}/3 (from --shard): ")
        shares.append(listed_cells(printed))
    assert sorted(name for share in shares for name in share) == sorted(everything)
    assert [len(share) for share in shares] == [18, 18, 18]
    assert shares[1] == everything[1::3]  # cell i goes to shard i mod 3 + 1, in the plan's order
    assert not out.exists()  # a dry run writes nothing


def test_a_slurm_array_task_takes_its_share(tmp_path, capsys, monkeypatch):
    base = ["reproduce", "all", "--dry-run", "--out", str(tmp_path / "out")]
    assert main([*base, "--shard", "2/4"]) == 0
    expected = listed_cells(capsys.readouterr().out)
    # --array=0-3: the second task has id 1
    for name, value in (("ID", "1"), ("MIN", "0"), ("MAX", "3"), ("COUNT", "4")):
        monkeypatch.setenv(f"SLURM_ARRAY_TASK_{name}", value)
    assert main(base) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("shard 2/4 (from SLURM_ARRAY_TASK_ID=1 of the array 0-3): ")
    assert listed_cells(printed) == expected


@pytest.mark.parametrize("shard", ["3/2", "0/2", "a/b", "2"])
def test_bad_shards_are_refused_before_anything_is_written(tmp_path, capsys, shard):
    out = tmp_path / "out"
    assert main(["reproduce", "table2", "--quick", "--out", str(out), "--shard", shard]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("digitlab: error: --shard ")
    assert not out.exists()


def test_figure3s_tuned_cells_go_last_and_leave_the_others_in_their_shards():
    base = TrainConfig(progress="none")
    search_only = shard_order(figure3_cells(base, [0, 1], None))
    best = dict.fromkeys(FIGURE3_OPTIMIZERS, 0.01)
    with_tuned = shard_order(figure3_cells(base, [0, 1], best))
    assert [c.role for c in with_tuned[len(search_only) :]] == ["tuned"] * 8
    for k in (1, 2, 3):
        before, after = Shard(k, 3).take(search_only), Shard(k, 3).take(with_tuned)
        assert after[: len(before)] == before


def test_manifest_updates_from_processes_at_once_all_stay(tmp_path):
    out = tmp_path / "out"
    manifest = {"experiments": ["table2"], "seeds": [0], "quick": True, "precision": "fp32"}
    cells = table_cells("table2", TrainConfig(progress="none"), [0])
    threads = [threading.Thread(target=update_manifest, args=(out, manifest, f"command {n}", cells)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saved = read_json(out / MANIFEST)
    assert sorted(saved["commands"]) == [f"command {n}" for n in range(8)]
    assert saved["cells"] == sorted(c.name for c in cells)


# --- a tiny real grid: table2 (3 cells) in quick mode on 8x8 synthetic digits, in three shards ------------------


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_dataset(
        tmp_path_factory.mktemp("digits8"), shape=(8, 8), n_train=1000, n_test=100
    )  # one step an epoch


def grid_args(digits, out) -> list[str]:
    return ["reproduce", "table2", "--quick", "--data-dir", str(digits), "--out", str(out), "--threads", "1"]


@pytest.fixture(scope="module")
def first_shard(digits, tmp_path_factory):
    """Shard 1/3 alone, and the report built while the other shards had not run: what each printed."""
    out = tmp_path_factory.mktemp("sharded") / "out"
    code, shard_output = run_main([*grid_args(digits, out), "--shard", "1/3"])
    assert code == 0
    made_report = (out / "REPORT.md").exists()
    code, report_output = run_main(["report", str(out)])
    assert code == 0
    return {
        "out": out, "shard": shard_output, "made_report": made_report, "report": report_output,
        "report_md": (out / "REPORT.md").read_text(),
    }  # fmt: skip


@pytest.fixture(scope="module")
def all_shards(first_shard, digits):
    """Then shards 2/3 (--shard) and 3/3 (as a Slurm array task) at once, in two processes on the same folder."""
    out = first_shard["out"]
    command = [sys.executable, "-m", "digitlab", *grid_args(digits, out)]
    slurm = os.environ | {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}
    processes = [
        subprocess.Popen([*command, "--shard", "2/3"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=slurm),
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    return out, [first_shard["shard"], *outputs]


def trained_by(output: str) -> list[str]:
    line = next(line for line in output.splitlines() if " trained " in line and line.startswith("shard "))
    return line.partition(": ")[2].split(", ") if ": " in line else []


def test_a_shard_alone_builds_no_report_and_the_report_names_the_missing_cells(first_shard):
    assert not first_shard["made_report"]
    assert "shard 1/3: no report yet, 2 cells of the grid have not finished" in first_shard["shard"]
    assert trained_by(first_shard["shard"]) == ["table-lstm-adam-lr0.001-b1000-e4-s0"]
    missing = ["table-blstm-final-adam-lr0.001-b1000-e4-s0", "table-blstm-paper-adam-lr0.001-b1000-e4-s0"]
    assert f"incomplete: 2 planned cells have not finished: {missing[0]} (not started)" in first_shard["report"]
    assert "**Incomplete: 2 planned cells have not finished**" in first_shard["report_md"]
    assert all(f"- `{name}`: not started" in first_shard["report_md"] for name in missing)
    assert "1 finished of 3 planned, 1 started" in first_shard["report_md"]


def test_shards_at_once_run_every_cell_exactly_once(all_shards):
    out, outputs = all_shards
    trained = [name for output in outputs for name in trained_by(output)]
    cells = sorted(f.name for f in (out / "cells").iterdir())
    assert sorted(trained) == cells and len(cells) == 3  # each cell trained by one shard, none twice
    assert "SLURM_ARRAY_TASK_ID=3" in outputs[2]
    for folder in (out / "cells").iterdir():
        assert rundir.is_finished(folder)
        assert [row["epoch"] for row in read_rows(folder / rundir.METRICS)] == [1, 2, 3, 4]
    manifest = read_json(out / MANIFEST)
    assert len(manifest["commands"]) == 3 and manifest["cells"] == cells
    # The shard that finished the grid built the complete report (both may have, one after the other).
    assert any("report: " in output for output in outputs[1:])
    assert unfinished(out) == []


def test_report_from_every_shards_cells(all_shards, capsys):
    out, _ = all_shards
    assert main(["report", str(out)]) == 0
    assert "incomplete" not in capsys.readouterr().out
    report = (out / "REPORT.md").read_text()
    assert "3 finished of 3 planned, 3 started" in report and "Incomplete" not in report
    assert "| table2 | blstm-final | 1 |" in report
    summary = json.loads((out / "results.json").read_text())
    assert len(summary["cells"]) == 3
