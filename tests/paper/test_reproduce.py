"""`digitlab reproduce` and `digitlab report` end to end on synthetic data, in quick mode."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from digitlab.cli import main
from digitlab.paper.cells import status
from digitlab.paper.grid import FIGURE3_OPTIMIZERS
from digitlab.store import rundir
from digitlab.store.files import read_json, read_rows
from helpers import write_dataset

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory):
    # 8x8 images keep every model fast; quick mode uses the first 2000 training and 500 test examples.
    return write_dataset(tmp_path_factory.mktemp("digits8"), shape=(8, 8), n_train=2000, n_test=500)


@pytest.fixture(scope="module")
def quick_reproduction(small_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduction")
    code = main(["reproduce", "all", "--quick", "--data-dir", str(small_digits), "--out", str(out), "--threads", "1"])
    assert code == 0
    return out


def test_report_folder_is_complete(quick_reproduction):
    out = quick_reproduction
    report = (out / "REPORT.md").read_text()
    assert report.splitlines()[0].startswith("**QUICK RUN")
    for name in ("table2", "table3", "table4", "figure3"):
        png = (out / "figures" / f"{name}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
        assert f"figures/{name}.png" in report
    assert "Claims of the paper" in report and "ordering" in report


def test_csv_and_json_agree_with_run_directories(quick_reproduction):
    out = quick_reproduction
    rows = list(csv.DictReader((out / "results.csv").open()))
    summary = json.loads((out / "results.json").read_text())
    folders = [f for f in (out / "cells").iterdir() if (f / rundir.CONFIG).exists()]
    assert len(summary["cells"]) == len(folders)
    expected = {(f.name, row["epoch"]): row for f in folders for row in read_rows(f / rundir.METRICS)}
    assert len(rows) == len(expected)
    for row in rows:
        truth = expected[(row["cell"], int(row["epoch"]))]
        assert float(row["test_acc"]) == pytest.approx(truth["test/acc"])
        assert float(row["train_seconds"]) == pytest.approx(truth["train/seconds"])
    for cell in summary["cells"]:
        assert cell["epochs"] == read_rows(out / "cells" / cell["cell"] / rundir.METRICS)


def test_every_cell_finished_including_tuned(quick_reproduction):
    folders = list((quick_reproduction / "cells").iterdir())
    roles = {f.name.split("-")[0] for f in folders}
    assert roles == {"table", "fixed", "select", "tuned"}
    assert all(status(f) in ("done", "diverged") for f in folders)
    assert sum(f.name.startswith("tuned-") for f in folders) == 4


def test_optimizers_share_initial_weights_and_batch_order(quick_reproduction):
    fixed = [f for f in (quick_reproduction / "cells").iterdir() if f.name.startswith("fixed-")]
    assert {rundir.load_config(f).optimizer for f in fixed} == set(FIGURE3_OPTIMIZERS)
    weights = {read_json(f / rundir.RESULT)["initial_weights_sha256"] for f in fixed}
    orders = {tuple(row["batch_order_sha256"] for row in read_rows(f / rundir.METRICS)) for f in fixed}
    assert len(weights) == 1 and len(orders) == 1
    # ...and the check can fail: another seed gives other weights and another order.
    other = [f for f in (quick_reproduction / "cells").iterdir() if f.name.startswith("table-lstm")]
    assert (
        read_json(other[0] / rundir.RESULT)["initial_weights_sha256"] not in weights
        or rundir.load_config(other[0]).seed == rundir.load_config(fixed[0]).seed
    )


def test_report_rebuilds_without_training(quick_reproduction):
    before = (quick_reproduction / "results.csv").read_text()
    (quick_reproduction / "REPORT.md").unlink()
    assert main(["report", str(quick_reproduction)]) == 0
    assert (quick_reproduction / "REPORT.md").exists()
    assert (quick_reproduction / "results.csv").read_text() == before


def test_rerun_skips_finished_cells(quick_reproduction, small_digits, capsys):
    stamps = {
        f.name: (f / rundir.RESULT).stat().st_mtime_ns
        for f in (quick_reproduction / "cells").iterdir()
        if (f / rundir.RESULT).exists()
    }
    assert main(["reproduce", "all", "--quick", "--data-dir", str(small_digits), "--out", str(quick_reproduction)]) == 0
    assert "starting" not in capsys.readouterr().out
    assert stamps == {name: (quick_reproduction / "cells" / name / rundir.RESULT).stat().st_mtime_ns for name in stamps}


def test_unknown_experiment_is_refused(tmp_path):
    assert main(["reproduce", "table5", "--quick", "--out", str(tmp_path / "x")]) == 2


def test_unparsable_seeds_are_refused(tmp_path):
    assert main(["reproduce", "all", "--seeds", "0,x", "--out", str(tmp_path / "x")]) == 2


def test_full_run_into_a_quick_reproduction_is_refused(quick_reproduction, small_digits, capsys):
    # The folder holds a quick reproduction: a full one must not mix into it.
    assert main(["reproduce", "table2", "--data-dir", str(small_digits), "--out", str(quick_reproduction)]) == 2
    assert "choose another --out" in capsys.readouterr().err


def test_report_of_a_folder_without_a_reproduction_is_refused(tmp_path):
    assert main(["report", str(tmp_path)]) == 2


def test_cell_whose_config_changed_is_refused(small_digits, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["reproduce", "table2", "--quick", "--data-dir", str(small_digits), "--out", str(out), "--threads", "1"]
    assert main(args) == 0
    cell = next(f for f in (out / "cells").iterdir() if f.name.startswith("table-lstm"))
    config = json.loads((cell / rundir.CONFIG).read_text())
    config["lr"] = 0.5
    (cell / rundir.CONFIG).write_text(json.dumps(config))
    result_before = (cell / rundir.RESULT).read_bytes()
    assert main(args) == 2
    assert "no longer matches" in capsys.readouterr().err
    assert (cell / rundir.RESULT).read_bytes() == result_before


def _kill_when(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the reproduction ended before the kill point"
        assert time.monotonic() < deadline, "kill point not reached in time"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("where", ["between cells", "inside a cell"])
def test_resume_after_kill(small_digits, tmp_path, where):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "digitlab", "reproduce", "table4", "--quick", "--data-dir", str(small_digits),
               "--out", str(out), "--threads", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = out / "cells"

    def finished_one():
        return cells.is_dir() and any(rundir.is_finished(f) for f in cells.iterdir())

    def inside_second():  # a cell with an epoch checkpoint but not finished, after the first cell is done
        return finished_one() and any(
            not rundir.is_finished(f) and len(read_rows(f / rundir.METRICS)) >= 2 for f in cells.iterdir()
        )

    _kill_when(process, finished_one if where == "between cells" else inside_second)
    done_before = {f.name for f in cells.iterdir() if rundir.is_finished(f)}
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    folders = list(cells.iterdir())
    assert len(folders) == 3 and all(rundir.is_finished(f) for f in folders)
    assert done_before <= {f.name for f in folders}
    for folder in folders:
        epochs = [row["epoch"] for row in read_rows(folder / rundir.METRICS)]
        assert epochs == list(range(1, 13))  # no duplicated or missing epoch rows
        steps = [row["global_step"] for row in read_rows(folder / rundir.STEPS)]
        assert steps == list(range(1, len(steps) + 1))


def _fake_pressure(cell, epoch: int, value: float) -> None:
    rows = read_rows(cell / rundir.METRICS)
    rows[epoch - 1]["cpu_pressure_avg10"] = value
    (cell / rundir.METRICS).write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_retime_reruns_exactly_the_contended_cells(small_digits, tmp_path, capsys, monkeypatch):
    import digitlab.training.metrics

    monkeypatch.setattr(digitlab.training.metrics, "cpu_pressure_avg10", lambda: 0.0)  # a quiet machine
    out = tmp_path / "out"
    args = ["reproduce", "table2", "--quick", "--data-dir", str(small_digits), "--out", str(out), "--threads", "1"]
    assert main(args) == 0
    cells = out / "cells"
    busy = next(f for f in cells.iterdir() if f.name.startswith("table-blstm-paper"))
    quiet = {f.name: (f / rundir.RESULT).stat().st_mtime_ns for f in cells.iterdir() if f != busy}
    _fake_pressure(busy, 2, 60.0)
    faked = (busy / rundir.METRICS).read_text()
    assert main(["report", str(out)]) == 0
    report = (out / "REPORT.md").read_text()
    assert "| table2 | blstm-paper | 1 |" in report and "`table-blstm-paper" in report
    marked = [line for line in report.splitlines() if line.startswith("| table2 |") and "†" in line]
    assert len(marked) == 1 and "blstm-paper" in marked[0]
    capsys.readouterr()

    # The dry run lists it, and changes nothing.
    assert main([*args, "--dry-run", "--retime"]) == 0
    listing = capsys.readouterr().out
    states = {line.split()[0]: line.split()[1] for line in listing.splitlines() if line.startswith("table-")}
    assert states == {busy.name: "retime"} | {name: "done" for name in quiet}
    assert "--retime: 1 cells ran under CPU contention" in listing
    assert (busy / rundir.METRICS).read_text() == faked and not (out / "retimed").exists()

    # The real thing: the busy cell moves aside (kept whole) and runs again; the others are untouched.
    assert main([*args, "--retime"]) == 0
    log = capsys.readouterr().out
    assert log.count("starting") == 1 and f"{busy.name} (starting)" in log
    assert (out / "retimed" / f"{busy.name}-1" / rundir.METRICS).read_text() == faked
    assert rundir.is_finished(busy) and (busy / rundir.METRICS).read_text() != faked
    assert quiet == {name: (cells / name / rundir.RESULT).stat().st_mtime_ns for name in quiet}
    report = (out / "REPORT.md").read_text()
    assert "No table cell ran under contention." in report and "† |" not in report

    # A rerun that is contended again stays marked (and a second --retime keeps both old folders).
    monkeypatch.setattr(digitlab.training.metrics, "cpu_pressure_avg10", lambda: 55.0)
    _fake_pressure(busy, 1, 60.0)
    assert main([*args, "--retime"]) == 0
    assert (out / "retimed" / f"{busy.name}-2").is_dir() and (out / "retimed" / f"{busy.name}-1").is_dir()
    report = (out / "REPORT.md").read_text()
    assert "1 table cell ran under contention" in report and f"`{busy.name}`: 4 of 4 epochs above 10%" in report
