"""`digitlab serve` as a command: one line when the extra is missing or the port is taken; the port is bound
before the model loads; flags reach uvicorn."""

from __future__ import annotations

import importlib.util
import socket

import pytest

from digitlab import serve
from digitlab.cli import main


def test_without_the_extra_one_line_says_what_to_install(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        serve.importlib.util, "find_spec", lambda name, *args: None if name == "uvicorn" else real(name, *args)
    )
    assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    assert err == "digitlab: error: digitlab serve needs uvicorn (not installed): pip install 'digitlab[serve]'\n"


def test_a_port_in_use_fails_at_once_with_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"digitlab: error: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1
    assert "--port" in err


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_a_port_out_of_range_is_refused(capsys, port):
    assert main(["serve", "--port", port]) == 2
    assert "--port must be 0 to 65535" in capsys.readouterr().err


def test_a_missing_model_is_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "no-such-run"), "--port", "0"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("digitlab: error: ") and err.count("\n") == 1


def test_a_samples_folder_that_is_not_one_is_refused_before_anything_starts(tmp_path, capsys):
    (tmp_path / "thesis.txt").write_text("mine")
    assert main(["serve", "--port", "0", "--samples", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitlab: error: ") and "not a samples folder" in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.txt"]


def test_serve_prints_the_url_and_runs_uvicorn_on_the_bound_socket(monkeypatch, capsys):
    import uvicorn

    ran = {}

    def fake_run(self, sockets=None):
        ran["app"], ran["address"] = self.config.app, sockets[0].getsockname()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    assert main(["serve", "--port", "0"]) == 0
    out = capsys.readouterr().out
    host, port = ran["address"]
    assert host == "127.0.0.1" and port > 0
    assert f"at http://127.0.0.1:{port}/ (Ctrl-C stops)" in out
    assert {route.path for route in ran["app"].routes} >= {"/predict", "/health", "/"}


def test_url_writes_ipv6_in_brackets():
    class Bound:  # a socket's getsockname() answer, without needing IPv6 on the machine
        def __init__(self, *address):
            self.address = address

        def getsockname(self):
            return self.address

    assert serve.url(Bound("::1", 8000, 0, 0)) == "http://[::1]:8000/"
    assert serve.url(Bound("127.0.0.1", 8000)) == "http://127.0.0.1:8000/"


def test_the_listening_socket_is_tcp_so_keep_alive_answers_are_not_delayed():
    # asyncio sets TCP_NODELAY only on IPPROTO_TCP sockets; with protocol 0 each answer on a kept-alive
    # connection waited ~40 ms for the client's delayed ACK (benchmarks/serve_latency.py found it)
    sock = serve.listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
