"""Fixtures of the search's tests: a tiny search space (the one place the tests write one), the `digitlab tune`
command line, a PostgreSQL server.

The server is Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin), started for the session on
127.0.0.1 at a free port in a temporary folder and stopped after; PostgreSQL refuses to run as root, so as root it
runs as the package's own `postgres` user. Without the package the PostgreSQL tests are skipped (CI installs it).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# An mlp of 16 units, the optimisation fixed but for the learning rate and the dropout: trials of a fraction of a
# second on the synthetic data.
FIXED = """
[space]
hidden_size = 16
num_layers = 1
batch_size = 50
optimizer = "adam"
schedule = "constant"
weight_decay = 0.0
"""


def space_text(lr: str = "{ choices = [0.01, 1e-7, 1e6] }", dropout: str | None = "{ low = 0.0, high = 0.2 }") -> str:
    """The tiny mlp's space searching `lr` and `dropout` (None: not searched). The default learning rates are a
    good one, a useless one and one that diverges."""
    return FIXED + f"lr = {lr}\n" + (f"dropout = {dropout}\n" if dropout is not None else "")


SPACE = space_text()


@pytest.fixture(scope="session")
def tiny_space():
    """A factory: tiny_space(lr=..., dropout=...) -> the text of a --space file of the tiny mlp (space_text);
    tiny_space() is SPACE."""
    return space_text


@pytest.fixture
def space_file(tmp_path):
    """A factory: space_file(text=SPACE) -> the path of a --space file holding it."""

    def write(text: str = SPACE, name: str = "space.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def tune_argv():
    """A factory: tune_argv(data_dir, out, space, *more) -> `digitlab tune`'s arguments for a tiny mlp study."""

    def argv(data_dir, out, space, *more) -> list[str]:
        return [
            "tune", "--model", "mlp", "--epochs", "2", "--val-size", "100", "--data-dir", str(data_dir),
            "--out", str(out), "--space", str(space), "--threads", "1", "--device", "cpu", *map(str, more),
        ]  # fmt: skip

    return argv


@pytest.fixture
def digitlab_process():
    """A factory: digitlab_process(argv) -> the command line of a `digitlab` process in this Python."""
    return lambda argv: [sys.executable, "-m", "digitlab", *argv]


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """postgresql://tuner@127.0.0.1:PORT/postgres of a server started for the session (trust authentication)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    binaries = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="digitlab-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres will not run as root: as the package's own user, in a folder it owns
        user = next((name for name in ("postgres", "nobody") if _user_exists(name)), None)
        if user is None:
            pytest.skip("running as root, and there is no postgres (or nobody) user to run PostgreSQL as")
        shutil.chown(root, user)
        as_user = ["runuser", "-u", user, "--"]
    data, port = root / "data", _free_port()

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *args], cwd=root, capture_output=True, text=True, timeout=60)

    made = pg(str(binaries / "initdb"), "-D", str(data), "-U", "tuner", "-A", "trust", "-E", "UTF8", "--no-sync")
    assert made.returncode == 0, made.stderr
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    started = pg(
        str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "start"
    )
    assert started.returncode == 0, started.stderr + (root / "server.log").read_text()
    try:
        yield f"postgresql://tuner@127.0.0.1:{port}/postgres"
    finally:
        pg(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
