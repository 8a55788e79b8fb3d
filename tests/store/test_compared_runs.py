"""`digitlab compare` (store.compared_runs, console.format_comparison, paper.plots.compare_figure) on two tiny runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from digitlab.cli import main
from digitlab.config import TrainConfig
from digitlab.errors import ConfigError, RunError
from digitlab.store import compared_runs, rundir
from digitlab.store.files import read_json, read_rows
from digitlab.training.fit import fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, session_data_dir):
    """Two finished runs that differ in lr and epochs (one with a validation split); never modify them."""
    folder = tmp_path_factory.mktemp("compare")
    common = dict(
        model="mlp", hidden_size=16, num_layers=1, batch_size=25, train_limit=150, test_limit=50, threads=1,
        device="cpu", progress="none", data_dir=str(session_data_dir),
    )  # fmt: skip
    quiet = lambda *args, **kwargs: None  # noqa: E731
    slow = fit(TrainConfig(**common, lr=0.001, epochs=2, run_dir=str(folder / "a" / "run")), log=quiet)
    fast = fit(TrainConfig(**common, lr=0.01, epochs=3, val_size=50, run_dir=str(folder / "b" / "run")), log=quiet)
    return slow, fast


def test_table_names_the_differing_fields_and_final_numbers(two_runs, tmp_path, capsys):
    slow, fast = two_runs
    assert main(["compare", str(slow), str(fast), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out.splitlines()
    heading = out[0].split()
    # The differing config fields (not run_dir), then the final numbers, then the state.
    assert heading[:4] == ["run", "lr", "epochs", "val_size"]
    assert "train loss" in out[0] and "test acc %" in out[0] and "val acc %" in out[0] and "train s" in out[0]
    # Same folder name "run": the labels keep a parent folder to tell them apart.
    rows = {line.split()[0]: line.split() for line in out[1:3]}
    assert set(rows) == {"a/run", "b/run"}
    a_final = read_rows(slow / rundir.METRICS)[-1]
    assert rows["a/run"][1:4] == ["0.001", "2", "0"]
    assert f"{a_final['train/loss']:.4f}" in rows["a/run"] and f"{a_final['test/acc'] * 100:.2f}" in rows["a/run"]
    assert rows["a/run"][-1] == "finished" and "-" in rows["a/run"]  # no validation split: '-'
    b_total = read_json(fast / rundir.RESULT)["train_seconds_total"]
    assert f"{b_total:.1f}" in rows["b/run"]
    assert out[-1] == f"figure: {tmp_path / 'cmp' / 'compare.png'}"
    png = (tmp_path / "cmp" / "compare.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000


def test_default_folder_is_new_and_named(two_runs, capsys):
    slow, fast = two_runs
    assert main(["compare", str(slow), str(fast)]) == 0  # the test's cwd is a fresh temporary folder
    line = capsys.readouterr().out.splitlines()[-1]
    path = line.removeprefix("figure: ")
    assert path.startswith("compare-") and path.endswith("/compare.png")
    assert Path(path).read_bytes().startswith(PNG_SIGNATURE)


def test_an_unfinished_run_shows_what_it_has(two_runs, tmp_path, capsys):
    slow, fast = two_runs
    stopped = tmp_path / "stopped"
    shutil.copytree(fast, stopped)
    (stopped / rundir.RESULT).unlink()  # as a run killed after its second epoch leaves it
    rows = read_rows(stopped / rundir.METRICS)[:2]
    (stopped / rundir.METRICS).write_text("".join(json.dumps(row) + "\n" for row in rows))
    found = compared_runs.read_runs([slow, stopped])
    assert found[1].state() == "unfinished, 2 of 3 epochs"
    assert found[1].final()["epochs"] == 2 and found[1].final()["test/acc"] == rows[-1]["test/acc"]
    assert main(["compare", str(slow), str(stopped), "--out", str(tmp_path / "cmp")]) == 0
    assert "unfinished, 2 of 3 epochs" in capsys.readouterr().out


def test_a_run_before_its_first_epoch_still_draws(two_runs, tmp_path):
    slow, _ = two_runs
    young = tmp_path / "young"
    shutil.copytree(slow, young)
    for name in (rundir.RESULT, rundir.METRICS):
        (young / name).unlink()
    assert main(["compare", str(slow), str(young), "--out", str(tmp_path / "cmp")]) == 0
    assert compared_runs.curves(compared_runs.read_run(young))["step_loss"] == []  # no epoch yet: its length is unknown


@pytest.mark.parametrize("case", ["one run", "not a run", "missing", "twice"])
def test_bad_input_is_one_line(two_runs, tmp_path, capsys, case):
    slow, _ = two_runs
    args = {
        "one run": [str(slow)],
        "not a run": [str(slow), str(tmp_path)],
        "missing": [str(slow), str(tmp_path / "nothing")],
        "twice": [str(slow), str(slow / ".." / slow.name)],
    }[case]
    assert main(["compare", *args, "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("digitlab: error: ")
    assert not (tmp_path / "cmp").exists()


def test_differing_ignores_the_run_directory(two_runs):
    slow, fast = two_runs
    found = compared_runs.read_runs([slow, fast])
    assert compared_runs.differing(found) == ["lr", "epochs", "val_size"]
    with pytest.raises(ConfigError):
        compared_runs.read_runs([slow])
    with pytest.raises(RunError):
        compared_runs.read_run(slow.parent)
