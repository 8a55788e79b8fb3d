"""The `digitlab` dispatcher (digitlab.cli): `python -m digitlab`, `digitlab --help` listing every subcommand, a
command's result or error turned into its exit code, and the one-line error under torchrun.

Bad input must end with a non-zero exit code and one line on stderr, "digitlab: error: ...", never a traceback.
Each subcommand's own tests are in tests/commands/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from digitlab.cli import main
from digitlab.commands import COMMANDS, models
from digitlab.errors import ConfigError, TrainingError
from digitlab.store import rundir
from helpers import TINY, assert_user_error, run_cli


def module_environment() -> dict:
    return dict(os.environ, PYTHONWARNINGS="error::DeprecationWarning:digitlab")


def test_python_dash_m_digitlab_trains(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "digitlab", "train", *TINY, "--data-dir", str(data_dir), "--run-dir", str(run_dir)],
        capture_output=True, text=True, env=module_environment(), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"run directory: {run_dir}" in done.stdout
    assert rundir.is_finished(run_dir)


def test_python_dash_m_digitlab_fails_with_one_line(data_dir, tmp_path):
    failed = subprocess.run(
        [sys.executable, "-m", "digitlab", "evaluate", str(tmp_path / "nothing-here"), "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=module_environment(), timeout=300,
    )  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr.startswith("digitlab: error: ") and len(failed.stderr.splitlines()) == 1, failed.stderr
    assert "Traceback" not in failed.stderr


def test_help_lists_every_subcommand_in_order(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    # each subcommand's line is indented by 4; its help's continuation lines by more
    listed = re.findall(r"^    (\S+)", capsys.readouterr().out, flags=re.MULTILINE)
    assert listed == [command.__name__.rsplit(".", 1)[1] for command in COMMANDS]


def test_a_command_without_a_subcommand_is_refused(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2  # argparse's own exit for a bad command line
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("returned, code", [(None, 0), (0, 0), (3, 3), ("a run directory", 0)])
def test_what_a_command_returns_is_its_exit_code_when_it_is_a_number(capsys, monkeypatch, returned, code):
    # build_parser registers the subcommands on every call, so the module's `run` is looked up then
    monkeypatch.setattr(models, "run", lambda args: returned)
    assert run_cli(capsys, ["models"]) == (code, "", "")


@pytest.mark.parametrize("error, code", [(ConfigError("bad setting"), 2), (TrainingError("diverged"), 1)])
def test_a_digitlab_error_is_one_line_and_its_exit_code(capsys, monkeypatch, error, code):
    def fail(args):
        raise error

    monkeypatch.setattr(models, "run", fail)
    assert assert_user_error(capsys, ["models"], code=code) == f"digitlab: error: {error}"


def test_ctrl_c_exits_130_with_one_line(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "run", interrupted)
    assert run_cli(capsys, ["models"]) == (130, "", "digitlab: interrupted\n")


def test_under_torchrun_only_rank_0_prints_the_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "1")
    code, out, err = run_cli(capsys, ["evaluate", tmp_path / "missing"])
    assert code == 2 and err == ""
    monkeypatch.setenv("RANK", "0")
    assert_user_error(capsys, ["evaluate", tmp_path / "missing"], "not a directory", code=2)
