"""`digitlab tune`: hyperparameter search with Optuna, each trial an ordinary run directory.

  space.py     the search-space format: OPTIMISATION, each model's own (digitlab.models), a --space TOML file
  storage.py   the study's database (SQLite or a URL, its password hidden), re-queuing dead workers' trials
  study.py     opening a study: its settings, identity, sampler and pruner
  progress.py  the trials counted by state, one line per finished trial
  trials.py    the objective (each trial an ordinary run) and the loop that runs trials until --trials finish
  retrain.py   the best trial retrained on the whole training set, its recipe best.toml
  report.py    `digitlab report STUDY_DIR`: the best trials, Optuna's figures, the retrained result

Optuna (and psycopg (3), for a PostgreSQL storage) are an optional extra, `pip install 'digitlab[tune]'`: only
the modules listed after space.py import them, so every other command, and this package's own __init__, start without
them, and `digitlab tune` without them fails with one line that says what to install.
"""

from __future__ import annotations

from digitlab.errors import DigitlabError

STUDY_FILE = "study.json"  # marks a folder as a study: what `digitlab report` looks for


class MissingExtra(DigitlabError):
    """The search's packages are not installed."""


def require() -> None:
    """Raise MissingExtra, naming what to install, unless optuna imports."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise MissingExtra("digitlab tune needs optuna (not installed): pip install 'digitlab[tune]'") from None
