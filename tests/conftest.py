"""Shared fixtures: synthetic IDX datasets, an isolated environment, a local HTTP mirror, a tiny finished run.

Everything here is hermetic: no test reads the user's cache, the network (other than 127.0.0.1) or npm.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from helpers import write_dataset


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    """No test touches the real cache, the mirrors, npm, a DIGITLAB_DATA_DIR, torchrun or Slurm array variables or
    the cwd."""
    cache = tmp_path_factory.mktemp("digitlab-cache")
    monkeypatch.setenv("DIGITLAB_CACHE", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache / "xdg"))
    monkeypatch.setenv("DIGITLAB_MNIST_MIRRORS", "")
    monkeypatch.delenv("DIGITLAB_DATA_DIR", raising=False)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for part in ("ID", "MIN", "MAX", "STEP", "COUNT"):  # a test job run as a Slurm array task shards no grid
        monkeypatch.delenv(f"SLURM_ARRAY_TASK_{part}", raising=False)
    # npm would reach the registry: make it look uninstalled (other programs are still found).
    import digitlab.data.fetch

    real_which = shutil.which
    monkeypatch.setattr(
        digitlab.data.fetch.shutil,
        "which",
        lambda cmd, *args, **kwargs: None if cmd == "npm" else real_which(cmd, *args, **kwargs),
    )
    # A run directory left at its default place lands here, not in the repository.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    return cache


@pytest.fixture
def cache_folder(isolated_environment) -> Path:
    """The folder the fetch chain caches MNIST in during this test (may not exist yet)."""
    return isolated_environment / "mnist"


@pytest.fixture
def make_dataset(tmp_path):
    """A factory: make_dataset(name, shape=(28, 28), n_train=300, n_test=100, classes=10, gz=True) -> folder."""

    def make(name: str = "data", **kwargs) -> Path:
        return write_dataset(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def data_dir(make_dataset) -> Path:
    """Synthetic 28x28 data, gzip-compressed: 300 training and 100 test examples of 10 classes."""
    return make_dataset("data-gz", gz=True)


@pytest.fixture
def raw_data_dir(make_dataset) -> Path:
    """The same synthetic data as `data_dir`, uncompressed."""
    return make_dataset("data-raw", gz=False)


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory) -> Path:
    """Synthetic 28x28 gz data shared by the whole session (never modify it)."""
    return write_dataset(tmp_path_factory.mktemp("session-data"), gz=True)


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    """Synthetic 12x16 data (a different image size), shared by the session (never modify it)."""
    return write_dataset(tmp_path_factory.mktemp("session-data-12x16"), shape=(12, 16), n_train=120, n_test=40)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, session_data_dir) -> Path:
    """A finished run: a tiny LSTM trained for one epoch on `session_data_dir` (never modify it; copy it)."""
    from digitlab.config import TrainConfig
    from digitlab.training.fit import fit

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    config = TrainConfig(
        model="lstm",
        hidden_size=16,
        num_layers=1,
        batch_size=50,
        epochs=1,
        data_dir=str(session_data_dir),
        run_dir=str(run_dir),
        threads=1,
        progress="none",
        device="cpu",
    )
    return fit(config, log=lambda *args, **kwargs: None)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def http_mirror():
    """A factory: http_mirror(folder) serves `folder` on 127.0.0.1 and returns its base URL (with '/').
    The server keeps a list of the paths requested in `.requests[url]`."""
    servers = []

    class Mirror:
        def __init__(self):
            self.requests: dict[str, list[str]] = {}

        def __call__(self, folder: Path) -> str:
            log: list[str] = []

            class Handler(_QuietHandler):
                def do_GET(self):
                    log.append(self.path)
                    super().do_GET()

            server = http.server.ThreadingHTTPServer(
                ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
            )
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            servers.append((server, thread))
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            self.requests[url] = log
            return url

    yield Mirror()
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_mirror():
    """The URL of a port on 127.0.0.1 with nothing listening (the socket is bound, so no one else takes it)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()
