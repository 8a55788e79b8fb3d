"""Workers that start at once on a new database race to make its tables: the loser's next try finds them made
(CI saw PostgreSQL answer 'relation "alembic_version" already exists' to one of two workers). Any other database
error is still one line."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")
sqlalchemy_exc = pytest.importorskip("sqlalchemy.exc")

from digitlab.errors import ConfigError  # noqa: E402
from digitlab.tune import storage  # noqa: E402


def failing_first(monkeypatch, error: Exception) -> list[int]:
    calls: list[int] = []

    def fake(url, **options):
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "made"

    monkeypatch.setattr(optuna.storages, "RDBStorage", fake)
    monkeypatch.setattr(storage.time, "sleep", lambda seconds: None)
    return calls


@pytest.mark.parametrize(
    "error",
    [
        sqlalchemy_exc.ProgrammingError("CREATE TABLE", {}, Exception('relation "alembic_version" already exists')),
        sqlalchemy_exc.IntegrityError("INSERT", {}, Exception("duplicate key value violates unique constraint")),
    ],
)
def test_a_worker_that_lost_the_race_to_make_the_tables_tries_again(monkeypatch, error):
    calls = failing_first(monkeypatch, error)
    assert storage.open_storage("sqlite:///unused.db") == "made"
    assert len(calls) == 2


def test_another_programming_error_is_one_line_at_once(monkeypatch):
    calls = failing_first(monkeypatch, sqlalchemy_exc.ProgrammingError("SELECT", {}, Exception("permission denied")))
    with pytest.raises(ConfigError, match="cannot connect to the study storage sqlite:///unused.db: permission"):
        storage.open_storage("sqlite:///unused.db")
    assert len(calls) == 1
