"""Seed lists (digitlab.seeds): one meaning for every flag that takes several seeds."""

from __future__ import annotations

import pytest

from digitlab.errors import ConfigError
from digitlab.seeds import parse_seeds


@pytest.mark.parametrize(
    "text, seeds", [("3", [0, 1, 2]), ("1", [0]), ("0,1,2", [0, 1, 2]), ("7,", [7]), ("5, 9", [5, 9])]
)
def test_a_seed_list_means_one_thing(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["x", "0,x", "0", "1,1", "-1,2", ","])
def test_a_bad_seed_list_names_its_flag(text):
    with pytest.raises(ConfigError, match="--retrain-seeds"):
        parse_seeds(text, "--retrain-seeds")


@pytest.mark.parametrize("command, option", [("reproduce", "--seeds"), ("tune", "--retrain-seeds")])
def test_both_seed_list_flags_say_what_a_count_means(command, option, capsys):
    from digitlab.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a count (3 = seeds 0,1,2) or a comma-separated list" in text and option in text
