"""`digitlab models` through digitlab.cli.main([...]): every registered model listed, with its size."""

from __future__ import annotations

from digitlab.models import MODELS
from helpers import run_cli


def test_models_lists_every_model(capsys):
    code, out, err = run_cli(capsys, ["models"])
    assert (code, err) == (0, "")
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == list(MODELS)
    assert "parameters" in out
