"""Bad input to `digitlab tune` ends with one clear line and loses nothing: a search space that does not parse,
an unknown parameter, an empty range, a storage that does not connect (its password hidden), a study name that
exists with another objective or other settings, and a missing `tune` extra."""

from __future__ import annotations

import sys

import pytest

optuna = pytest.importorskip("optuna")

from digitlab import cli  # noqa: E402
from digitlab.tune import storage  # noqa: E402


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("digitlab: error: "), err
    return err[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("[space]\nlr = { low = 0.1", "is not valid TOML"),
        ("[space]\nlearning_rate = { low = 1e-4, high = 1e-2 }", "unknown parameter 'learning_rate'"),
        ("[space]\nlr = { low = 1e-2, high = 1e-4, log = true }", "is empty"),
    ],
)
def test_a_bad_space_is_refused_before_anything_is_written(
    capsys, tmp_path, session_data_dir, space_file, tune_argv, text, message
):
    out = tmp_path / "study"
    assert cli.main(tune_argv(session_data_dir, out, space_file(text))) == 2
    assert message in one_error_line(capsys)
    assert not out.exists()


def test_a_storage_that_does_not_connect_is_one_line_without_its_password(
    capsys, tmp_path, session_data_dir, space_file, tune_argv, dead_mirror
):
    port = dead_mirror.rsplit(":", 1)[1].strip("/")  # a port on 127.0.0.1 where nothing listens
    url = f"postgresql://tuner:s3cret-word@127.0.0.1:{port}/studies"
    out = tmp_path / "study"
    assert cli.main(tune_argv(session_data_dir, out, space_file(), "--storage", url)) == 2
    line = one_error_line(capsys)
    assert f"cannot connect to the study storage postgresql://tuner:***@127.0.0.1:{port}/studies" in line
    assert "s3cret-word" not in line
    assert not out.exists()


@pytest.mark.parametrize("url", ["study.db", "postgress://tuner@127.0.0.1/studies"])
def test_a_storage_that_is_no_database_url_is_one_line(capsys, tmp_path, session_data_dir, space_file, tune_argv, url):
    assert cli.main(tune_argv(session_data_dir, tmp_path / "study", space_file(), "--storage", url)) == 2
    assert "give e.g. sqlite:///FILE or postgresql://USER@HOST:PORT/DATABASE" in one_error_line(capsys)


def test_a_study_name_with_another_objective_is_refused_and_kept(
    capsys, tmp_path, session_data_dir, space_file, tune_argv
):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    other = optuna.create_study(storage=url, study_name="loss", direction="minimize")
    other.add_trial(optuna.trial.create_trial(value=0.3))
    argv = tune_argv(session_data_dir, tmp_path / "study", space_file(), "--storage", url, "--study-name", "loss")
    assert cli.main(argv) == 2
    assert (
        "the study 'loss' in sqlite:///" in (line := one_error_line(capsys)) and "exists with another objective" in line
    )
    kept = optuna.load_study(study_name="loss", storage=url)
    assert kept.direction == optuna.study.StudyDirection.MINIMIZE and len(kept.trials) == 1


def test_other_settings_on_an_existing_study_are_refused(capsys, tmp_path, session_data_dir, space_file, tune_argv):
    out, space = tmp_path / "study", space_file()
    assert cli.main(tune_argv(session_data_dir, out, space, "--trials", "0", "--no-retrain")) == 0
    capsys.readouterr()
    assert cli.main(tune_argv(session_data_dir, out, space, "--trials", "0", "--no-retrain", "--epochs", "3")) == 2
    line = one_error_line(capsys)
    assert "was started with other settings: settings.epochs 2 (now 3)" in line and "--study-name" in line
    assert cli.main(tune_argv(session_data_dir, out, space, "--trials", "0", "--study-name", "other")) == 2
    assert f"{out} holds the study 'mlp', not 'other'" in one_error_line(capsys)


def test_without_the_extra_tune_says_what_to_install(
    capsys, tmp_path, session_data_dir, space_file, tune_argv, monkeypatch
):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now fails
    assert cli.main(tune_argv(session_data_dir, tmp_path / "study", space_file())) == 2
    assert "pip install 'digitlab[tune]'" in one_error_line(capsys)


def test_the_password_is_masked_in_every_message():
    assert storage.shown("postgresql://u:p4ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert storage.without_password("postgresql://u:p4ss@h:5432/db") == "postgresql://u@h:5432/db"
    assert storage.shown("not a url://u:p4ss@h") == "not a url://u:***@h"
