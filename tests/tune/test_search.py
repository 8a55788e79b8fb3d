"""A small study on synthetic data: it completes, prunes (by the pruner, and a diverged trial), keeps every trial
as a run directory that never touched the test set, retrains the best into a run and a recipe that `digitlab
train --config` reproduces, and reports."""

from __future__ import annotations

import json

import pytest

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402

from digitlab import cli, recipes  # noqa: E402
from digitlab.commands import report  # noqa: E402
from digitlab.store import rundir  # noqa: E402
from digitlab.store.files import read_json, read_rows  # noqa: E402
from digitlab.tune import STUDY_FILE  # noqa: E402
from digitlab.tune import retrain as retraining  # noqa: E402
from digitlab.tune import study as studies  # noqa: E402
from digitlab.tune import trials as searching  # noqa: E402

GOOD, USELESS, DIVERGING = 0.01, 1e-7, 1e6  # the space's learning rates (conftest.SPACE)
COMMAND = "digitlab tune --model mlp --trials 5"  # what `finished` says it was called as (not pytest's argv)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, session_data_dir, tiny_space):
    """A 5-trial study run in this process: the first four trials queued with a good, a useless, a diverging and
    a good learning rate, and a pruner that stops a trial below 50% validation accuracy from its second evaluation
    on (the diverging one fails at its second step); then the best retrained."""
    folder = tmp_path_factory.mktemp("study")
    space = folder / "space.toml"
    space.write_text(tiny_space())
    search = studies.Search(
        model="mlp", trials=5, epochs=2, val_size=100, data_dir=str(session_data_dir), out=str(folder / "s"),
        space_file=str(space), threads=1, device="cpu",
    )  # fmt: skip
    lines: list[str] = []
    pruner = optuna.pruners.ThresholdPruner(lower=0.5, n_warmup_steps=2)
    opened = studies.open_study(search, COMMAND, pruner=pruner, log=lines.append)
    for lr, dropout in ((GOOD, 0.0), (USELESS, 0.0), (DIVERGING, 0.0), (GOOD, 0.1)):
        opened.study.enqueue_trial({"lr": lr, "dropout": dropout})
    searching.run(opened)
    runs = retraining.retrain(opened, [0], None)
    return search, opened, lines, runs


def test_the_study_records_the_command_it_was_given(finished):
    search, _, _, _ = finished
    assert read_json(search.folder / STUDY_FILE)["command"] == COMMAND


def trial_states(opened) -> dict[int, TrialState]:
    return {t.number: t.state for t in opened.study.get_trials()}


def test_the_study_completes_its_trials_and_prunes(finished):
    _, opened, _, _ = finished
    trials = opened.study.get_trials()
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 5 == len(trials)
    assert trials[0].state == TrialState.COMPLETE and trials[0].value > 0.5
    assert trials[1].state == TrialState.PRUNED and "diverged" not in trials[1].user_attrs  # the pruner
    assert trials[1].user_attrs["epochs"] < 2  # stopped before its last epoch
    assert trials[2].state == TrialState.PRUNED and trials[2].user_attrs["diverged"].startswith("diverged at epoch 1")


def test_every_trial_is_a_run_directory_that_never_touched_the_test_set(finished):
    search, opened, _, _ = finished
    for trial in opened.study.get_trials():
        run = search.folder / "trials" / str(trial.number)
        config = rundir.load_config(run)
        assert (config.test_eval, config.val_size, config.seed, config.lr) == ("none", 100, 0, trial.params["lr"])
        assert all(
            not key.startswith(("test/", "ema/test/")) for row in read_rows(run / "metrics.jsonl") for key in row
        )
        if trial.user_attrs.get("diverged") is None:
            assert read_json(run / rundir.RESULT)["test"] == {}
            evaluations = read_rows(run / "evaluations.jsonl")
            assert [row["val/acc"] for row in evaluations][-1] == pytest.approx(trial.intermediate_values[
                max(trial.intermediate_values)])  # fmt: skip
    # four evaluations an epoch (200 training images, batch 50: one a step)
    assert sorted(opened.study.get_trials()[0].intermediate_values) == list(range(1, 9))


def test_one_line_per_trial_and_a_summary(finished):
    _, _, lines, _ = finished
    per_trial = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] for line in per_trial] == ["[1/5", "[2/5", "[3/5", "[4/5", "[5/5"]
    assert "trial 0 complete" in per_trial[0] and "best" in per_trial[0] and " s" in per_trial[0]
    assert "trial 1 pruned at epoch" in per_trial[1] and "| 1 pruned |" in per_trial[1]
    assert "trial 2 pruned: diverged at epoch 1" in per_trial[2]
    assert any(line.startswith("study 'mlp': 5 finished trials") for line in lines)
    assert any(line.startswith("best: trial ") for line in lines)


def test_the_best_is_retrained_and_its_recipe_trains_the_same(finished, session_data_dir, tmp_path, capsys):
    search, opened, _, runs = finished
    best = max((t for t in opened.study.get_trials() if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert runs == [search.folder / "best"]
    config = rundir.load_config(runs[0])
    assert (config.val_size, config.test_eval, config.lr) == (0, "final", best.params["lr"])
    tested = read_json(runs[0] / rundir.RESULT)["test"]["test/acc"]
    recipe = recipes.load(str(search.folder / "best.toml"))
    assert recipe.settings["lr"] == best.params["lr"] and "data_dir" not in recipe.settings
    assert f"trial {best.number}" in recipe.summary and "test accuracy" in recipe.result
    again = tmp_path / "again"
    argv = ["train", "--config", str(search.folder / "best.toml"), "--data-dir", str(session_data_dir)]
    assert cli.main(argv + ["--run-dir", str(again), "--threads", "1", "--progress", "none", "--device", "cpu"]) == 0
    assert json.loads((again / rundir.RESULT).read_text())["test"]["test/acc"] == tested  # the same run


def test_a_finished_retraining_is_not_repeated(finished):
    search, opened, lines, _ = finished
    stamp = (search.folder / "best" / rundir.RESULT).stat().st_mtime_ns
    retraining.retrain(opened, [0], None)
    assert (search.folder / "best" / rundir.RESULT).stat().st_mtime_ns == stamp
    assert any("has retrained trial" in line for line in lines)


def test_more_retraining_seeds_split_by_shard(finished):
    from digitlab.shard import Shard

    search, opened, _, _ = finished
    stamp = (search.folder / "best" / rundir.RESULT).stat().st_mtime_ns
    assert retraining.retrain(opened, [0, 1], Shard.parse("2/2")) == [search.folder / "best-seed-1"]  # seed 1 only
    assert rundir.load_config(search.folder / "best-seed-1").seed == 1
    assert (search.folder / "best" / rundir.RESULT).stat().st_mtime_ns == stamp
    assert "(seed 0)" in (result := recipes.load(str(search.folder / "best.toml")).result) and "(seed 1)" in result


def test_report_writes_the_tables_and_optunas_figures(finished, capsys):
    search, _, _, _ = finished
    report.build(search.folder)
    assert capsys.readouterr().out.strip() == f"report: {search.folder / 'REPORT.md'}"
    text = (search.folder / "REPORT.md").read_text()
    for part in ("## The best trials", "| rank | trial | validation acc", "98.10%", "`lstm-best` recipe", "best.toml"):
        assert part in text
    for figure in ("history.png", "curves.png", "importances.png"):
        assert (search.folder / "figures" / figure).read_bytes()[:4] == b"\x89PNG"
    assert len(read_json(search.folder / "results.json")["trials"]) == 5


def test_a_study_with_all_its_trials_runs_none(finished):
    _, opened, lines, _ = finished
    before = len(opened.study.get_trials())
    searching.run(opened)
    assert len(opened.study.get_trials()) == before


def test_trial_seconds_stop_each_trial_at_its_first_evaluation(session_data_dir, tmp_path, space_file):
    search = studies.Search(
        model="mlp", trials=1, epochs=2, val_size=100, data_dir=str(session_data_dir), out=str(tmp_path / "s"),
        space_file=str(space_file()), threads=1, device="cpu", trial_seconds=1e-9,
    )  # fmt: skip
    opened = studies.open_study(search, COMMAND, log=lambda *a: None)
    opened.study.enqueue_trial({"lr": GOOD})
    searching.run(opened)
    for trial in opened.study.get_trials():
        assert trial.state == TrialState.COMPLETE
        assert trial.user_attrs["epochs"] == 0.25 and trial.user_attrs["stopped"] == "--trial-seconds 1e-09"
        assert trial.value == trial.intermediate_values[1]


def test_settings_that_cannot_train_together_prune_their_trial(session_data_dir, tmp_path, space_file, tiny_space):
    text = tiny_space().replace("batch_size = 50", "batch_size = { choices = [50, 1000] }")  # 1000 > the 200 images
    search = studies.Search(
        model="mlp", trials=1, epochs=2, val_size=100, data_dir=str(session_data_dir), out=str(tmp_path / "s"),
        space_file=str(space_file(text)), threads=1, device="cpu",
    )  # fmt: skip
    opened = studies.open_study(search, COMMAND, log=lambda *a: None)
    opened.study.enqueue_trial({"lr": GOOD, "batch_size": 1000})
    searching.run(opened)
    (trial,) = opened.study.get_trials()
    assert trial.state == TrialState.PRUNED and "larger than the training set" in trial.user_attrs["invalid"]
