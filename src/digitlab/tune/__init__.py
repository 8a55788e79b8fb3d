"""`digitlab tune`: hyperparameter search with Optuna, each trial an ordinary run directory.

  space.py   the search-space format: OPTIMISATION, each model's own (digitlab.models), a --space TOML file
  study.py   the study: storage, sampler and pruner, the objective, resuming, retraining the best, its recipe
  report.py  `digitlab report STUDY_DIR`: the best trials, Optuna's figures, the retrained result

Optuna (and psycopg2, for a PostgreSQL storage) are an optional extra, `pip install 'digitlab[tune]'`: only
study.py and report.py import them, so every other command, and this package's own __init__, start without
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
