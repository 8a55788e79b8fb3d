"""What every subcommand module of digitlab.commands shares: it is listed in COMMANDS (and in the package's
docstring), registers its parser under its own name with its `run`, and `digitlab <name> --help` works."""

from __future__ import annotations

import pkgutil

import pytest

import digitlab.commands
from digitlab.cli import main
from digitlab.commands import COMMANDS
from helpers import subcommand_parsers

SHARED = {"options"}  # the package's modules that are not a subcommand


def name(command) -> str:
    return command.__name__.rsplit(".", 1)[1]


def test_every_module_of_the_package_is_a_command_or_shared():
    modules = {module.name for module in pkgutil.iter_modules(digitlab.commands.__path__)}
    assert modules - SHARED == {name(command) for command in COMMANDS}
    assert len(COMMANDS) == len(set(COMMANDS))
    for module in sorted(modules):
        assert f"\n{module}.py " in digitlab.commands.__doc__, module


@pytest.mark.parametrize("command", COMMANDS, ids=name)
def test_every_command_registers_its_parser_and_its_run(command):
    assert callable(command.register) and callable(command.run)
    assert subcommand_parsers()[name(command)].get_default("run") is command.run


@pytest.mark.parametrize("command", COMMANDS, ids=name)
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as caught:
        main([name(command), "--help"])
    assert caught.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"usage: digitlab {name(command)} ") and err == ""
