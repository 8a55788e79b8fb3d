"""`digitlab serve`: a REST API (POST /predict, GET /health) and a page to draw a digit on, for one model.

FastAPI, uvicorn and python-multipart are an optional extra (`pip install 'digitlab[serve]'`): nothing
else in digitlab imports them, and this package's own __init__ does not either, so that the other commands
start without them and `digitlab serve` without them fails with one line that says what to install.
"""

from __future__ import annotations

import importlib.util
import socket

from digitlab.errors import ConfigError, DigitlabError

# the import names of the extra's packages; python-multipart's is python_multipart (before 0.0.13: multipart)
EXTRA_MODULES = {
    "fastapi": ("fastapi",),
    "uvicorn": ("uvicorn",),
    "python-multipart": ("python_multipart", "multipart"),
}


class MissingExtra(DigitlabError):
    """The server's packages are not installed."""


def require() -> None:
    """Raise MissingExtra, naming what to install, unless FastAPI, uvicorn and python-multipart are importable."""
    missing = [
        package
        for package, modules in EXTRA_MODULES.items()
        if all(importlib.util.find_spec(module) is None for module in modules)
    ]
    if missing:
        raise MissingExtra(f"digitlab serve needs {', '.join(missing)} (not installed): pip install 'digitlab[serve]'")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free one), made before the model loads, so that a port already
    in use fails at once with one line instead of after start-up, deep in uvicorn."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0 to 65535, got {port}")
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # the protocol must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets' connections,
        # and without it each keep-alive answer waits some 40 ms for the client's delayed ACK
        sock = socket.socket(family, kind, protocol or socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        raise ConfigError(
            f"cannot listen on {host}: {error}; pass --host 127.0.0.1 or this machine's address"
        ) from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}; pass another --port") from None
    return sock


def url(sock: socket.socket) -> str:
    """http://host:port/ of a bound socket (an IPv6 address in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
