"""The search-space format: every model's own space parses and trains at its bounds; a --space file overrides it
setting by setting; a file that is wrong gets one message naming the file and the setting."""

from __future__ import annotations

import ast

import pytest

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError
from digitlab.models import MODELS
from digitlab.tune import space
from helpers import REPO_ROOT


def base_config(model: str) -> TrainConfig:
    """What a study's trials start from (tune.study.base_config, without importing optuna)."""
    return TrainConfig(model=model, epochs=3, val_size=5000, test_eval="none", progress="none", keep_checkpoints=1)


class Suggester:
    """Stands in for an optuna trial: the lowest value of every range, the first of every choice."""

    def __init__(self):
        self.asked = []

    def suggest_int(self, name, low, high, step=1, log=False):
        self.asked.append(name)
        return low

    def suggest_float(self, name, low, high, step=None, log=False):
        self.asked.append(name)
        return low

    def suggest_categorical(self, name, choices):
        self.asked.append(name)
        return choices[0]


@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_declares_a_space_that_trains_at_its_bounds(model):
    searched = space.of_model(model)
    assert {"lr", "batch_size", "optimizer", "weight_decay", "schedule"} <= set(searched)
    assert searched["lr"].log and "hidden_size" in searched
    space.check(searched, base_config(model), model)  # every bound builds and validates


def imports(nodes) -> set[str]:
    found = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    return found | {node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.module}


def test_the_models_and_the_space_format_do_not_import_optuna():
    source = REPO_ROOT / "src" / "digitlab"
    for path in [*sorted((source / "models").glob("*.py")), source / "tune" / "space.py"]:  # anywhere in them
        assert not {m for m in imports(ast.walk(ast.parse(path.read_text()))) if m.startswith("optuna")}, path
    assert "optuna" not in imports(ast.parse((source / "tune/__init__.py").read_text()).body)  # only in require()


def test_a_file_overrides_the_models_space_setting_by_setting(space_file):
    path = space_file(
        "[space]\nlr = { low = 3e-4, high = 3e-3, log = true }\nhidden_size = 64\nrotate = { low = 0, high = 10 }\n"
    )
    searched = space.of_model("lstm", path)
    assert (searched["lr"].low, searched["lr"].high) == (3e-4, 3e-3)
    assert searched["hidden_size"].kind == "fixed" and searched["hidden_size"].value == 64
    assert searched["rotate"].kind == "float" and searched["num_layers"].kind == "int"  # added; kept


def test_sampling_fixes_conditions_and_types(space_file):
    searched = space.of_model("mlp", space_file('[space]\nschedule = { choices = ["constant", "cosine"] }\n'))
    trial = Suggester()
    values = space.sample(searched, trial)
    assert values["schedule"] == "constant" and "warmup" not in values and "warmup" not in trial.asked
    cosine = space.of_model("mlp", space_file('[space]\nschedule = "cosine"\n', "cosine.toml"))
    assert space.sample(cosine, Suggester())["warmup"] == 0.05  # the condition holds: sampled
    assert isinstance(values["hidden_size"], int) and isinstance(values["lr"], float)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[space\nlr = 1", "is not valid TOML"),
        ("lr = 0.1", "has one [space] table"),
        ("[space]\nhiden_size = 64", "unknown parameter 'hiden_size'; did you mean 'hidden_size'?"),
        ("[space]\nlr = { low = 0.01, high = 0.001 }", "lr: the range low = 0.01 .. high = 0.001 is empty"),
        ("[space]\nhidden_size = { low = 64, high = 64 }", "is empty"),
        ("[space]\nlr = { low = 0.0, high = 0.1, log = true }", "log-scale range must start above 0"),
        ("[space]\nbatch_size = { choices = [] }", "choices must be a non-empty list"),
        ("[space]\nhidden_size = { low = 8.5, high = 64 }", "hidden_size: low = 8.5 should be int"),
        ("[space]\noptimizer = { low = 1, high = 2 }", "optimizer is a str setting: give { choices = [...] }"),
        ("[space]\noptimizer = { choices = ['adam', 'adamx'] }", "optimizer = 'adamx' cannot train: unknown optimizer"),
        ("[space]\ndropout = { low = 0.0, high = 1.5 }", "dropout = 1.5 cannot train"),
        ("[space]\nlr = { lo = 0.1, high = 1 }", "give a range as { low = ..., high = ... }"),
        ("[space]\nseed = { choices = [0, 1] }", "seed cannot be part of a search space"),
        ("[space]\nwarmup = { low = 0.1, high = 0.2, when = { shedule = ['cosine'] } }", "names 'shedule'"),
        ("[space]\nwarmup = { low = 0.1, high = 0.2, when = { schedule = ['cosin'] } }", "unknown schedule 'cosin'"),
    ],
)
def test_a_bad_space_file_is_one_clear_message(space_file, text, message):
    path = space_file(text)
    with pytest.raises(ConfigError) as error:
        searched = space.of_model("mlp", path)
        space.check(searched, base_config("mlp"), str(path))
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)
