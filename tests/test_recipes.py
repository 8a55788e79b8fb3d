"""Recipes: every shipped recipe parses and trains a few steps; --config by name or file; flags override;
bad recipe files get one clear message."""

from __future__ import annotations

import json

import pytest

from digitlab import cli, recipes
from digitlab.config import TrainConfig
from digitlab.errors import ConfigError

SMALL = ["--train-limit", "60", "--test-limit", "20", "--epochs", "1", "--threads", "1", "--progress", "none"]


def test_the_named_recipes_ship():
    shipped = {"paper-lstm", "paper-blstm", "cnn-classic", "cnn-best", "lstm-best", "fast", "speedrun"}
    assert shipped <= set(recipes.names())


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_parses_and_trains_a_few_steps(name, session_data_dir, tmp_path):
    recipe = recipes.load(name)
    assert recipe.summary
    TrainConfig(**recipe.settings).validate()
    run = tmp_path / "run"
    val = ["--val-size", "20"] if recipe.settings.get("val_size") else []
    argv = ["train", "--config", name, "--data-dir", str(session_data_dir), "--run-dir", str(run), *SMALL, *val]
    assert cli.main(argv + ["--batch-size", "20"]) == 0
    saved = json.loads((run / "config.json").read_text())
    overridden = {"epochs", "batch_size", "val_size", "train_limit"}  # by SMALL and the flags above
    kept = {key: value for key, value in recipe.settings.items() if key not in overridden}
    if kept.get("precision") == "auto":  # recorded as what it resolved to on this machine
        assert saved["precision"] in {"bf16", "fp32"}
        kept.pop("precision")
    assert {key: saved[key] for key in kept} == kept  # the recipe's settings, recorded
    assert saved["epochs"] == 1 and saved["batch_size"] == 20  # the flags won


def test_a_file_of_ones_own(session_data_dir, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[config]\nmodel = "mlp"\nhidden_size = 8\nlr = 1\nbatch_size = 20\n')
    run = tmp_path / "run"
    argv = ["train", "--config", str(path), "--data-dir", str(session_data_dir), "--run-dir", str(run), *SMALL]
    assert cli.main(argv) == 0
    saved = json.loads((run / "config.json").read_text())
    assert (saved["model"], saved["hidden_size"], saved["lr"]) == ("mlp", 8, 1)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[config]\nmodle = "mlp"\n', "unknown setting 'modle'"),
        ('[config]\nepochs = "three"\n', "epochs = 'three' should be int"),
        ("[config]\nlr = true\n", "lr = True should be float"),
        ("[config\n", "not valid TOML"),
        ('model = "mlp"\n', "has a \\[config\\] table"),
    ],
)
def test_bad_recipe_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        recipes.load(str(path))


def test_an_unknown_name_lists_the_recipes(capsys):
    assert cli.main(["train", "--config", "cnn-bets"]) == 2
    assert "no recipe named 'cnn-bets'; choose one of: cnn-best" in capsys.readouterr().err


def test_recipes_command_lists_them(capsys):
    assert cli.main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in recipes.names()) and "parameters" in out
