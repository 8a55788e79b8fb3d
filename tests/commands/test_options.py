"""digitlab.commands.options: a shared option has one help text in every subcommand that takes it, and
command_line is the command main(argv) was given, not the process's sys.argv."""

from __future__ import annotations

import argparse

import pytest

from digitlab.commands import models
from digitlab.commands.options import command_line
from helpers import run_cli, subcommand_parsers


@pytest.mark.parametrize(
    "option, commands",
    [
        ("--data-dir", {"data", "train", "evaluate", "predict", "reproduce", "tune"}),
        ("--weights", {"evaluate", "predict", "export", "serve"}),
    ],
)
def test_a_shared_option_has_the_same_help_in_every_subcommand(option, commands):
    helps = {
        name: action.help
        for name, parser in subcommand_parsers().items()
        for action in parser._actions
        if option in action.option_strings
    }
    assert set(helps) >= commands  # a new subcommand may take it too, with the same text
    assert len(set(helps.values())) == 1, helps


def test_command_line_is_the_argv_main_parsed(monkeypatch):
    monkeypatch.setattr("sys.argv", ["/usr/bin/pytest", "-q", "tests/"])
    args = argparse.Namespace(argv=["reproduce", "table2", "--seeds", "3"])
    assert command_line(args) == "digitlab reproduce table2 --seeds 3"


def test_command_line_of_main_called_without_argv_is_the_process_s(monkeypatch):
    monkeypatch.setattr("sys.argv", ["/usr/local/bin/digitlab", "tune", "--model", "mlp"])
    assert command_line(argparse.Namespace(argv=None)) == "digitlab tune --model mlp"


def test_main_gives_a_command_the_argv_it_was_called_with(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["/usr/bin/pytest", "-q"])
    monkeypatch.setattr(models, "run", lambda args: print(command_line(args)))
    assert run_cli(capsys, ["models"]) == (0, "digitlab models\n", "")
