#!/usr/bin/env python
"""How fast `digitlab serve` answers: latency and throughput of POST /predict from 1, 4 and 16 clients at once.

    .venv/bin/python benchmarks/serve_latency.py [MODEL] [--clients 1,4,16] [--requests 300] [--warmup 30]
                                                 [--out benchmarks/results]

The server is the real one: `python -m digitlab serve [MODEL] --port 0` in a subprocess on 127.0.0.1
(default: the model shipped with digitlab), with uvicorn's defaults (access log on). Each request sends
the same picture the page sends: a 280x280 PNG of a 7 drawn white on black. After `--warmup` un-timed
requests, each level of concurrency sends `--requests` requests in all, split evenly among that many
client threads, each with its own keep-alive connection (httpx) and sending its next request as soon as
the last is answered: a bounded, closed-loop load. Per level: the median and 99th percentile of the
request latencies (send to whole answer read), the throughput (requests / wall seconds of the level) and the
requests that failed (an answer other than 200, or no answer within 30 s), which are counted, not timed.

Clients and server share the machine's cores: on a 2-core machine the clients' own work is part of what
is measured. /proc/pressure/cpu is read before and after each level, as the other benchmarks do.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

import common
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import Column, log
from digitlab.perf.machine import cpu_pressure
from digitlab.perf.timer import Timer

TARGET_P50_MS = 20.0  # at one client, on a 2-core machine (issue 11)


@contextlib.contextmanager
def running_server(
    model: str | None, log_file: Path, timeout: float = 60, options: tuple[str, ...] = ()
) -> Iterator[str]:
    """The base URL ("http://127.0.0.1:PORT/") of `python -m digitlab serve [model] --port 0 [options]`, once it
    answers /health; the server's output goes to `log_file`, and it is stopped (SIGTERM) on leaving."""
    argv = [sys.executable, "-m", "digitlab", "serve", *([model] if model else []), "--port", "0", *options]
    with log_file.open("w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"}
        )
    try:
        yield _wait_until_healthy(process, log_file, timeout)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(process: subprocess.Popen, log_file: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"digitlab serve exited with {process.returncode}:\n{log_file.read_text()}")
        found = re.search(r" at (http://\S+/) ", log_file.read_text())
        if found:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(found.group(1) + "health", timeout=2).status_code == 200:
                    return found.group(1)
        time.sleep(0.1)
    raise RuntimeError(f"digitlab serve did not answer /health within {timeout} s:\n{log_file.read_text()}")


def drawn_seven() -> bytes:
    """What the page sends: its 280x280 pad as a PNG, a 7 drawn white on black with a 20-pixel pen."""
    image = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(image).line([(70, 60), (210, 60), (120, 230)], fill=255, width=20, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def post(client: httpx.Client, url: str, picture: bytes) -> float:
    """Seconds for one POST /predict, checked to answer 200."""
    started = time.perf_counter()
    response = client.post(url + "predict", files={"file": ("drawing.png", picture, "image/png")})
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"POST /predict answered {response.status_code}: {response.text}")
    return seconds


def attempt(client: httpx.Client, url: str, picture: bytes) -> float | str:
    """post()'s seconds, or why the request failed (one line)."""
    try:
        return post(client, url, picture)
    except (httpx.HTTPError, RuntimeError) as error:
        return f"{type(error).__name__}: {str(error)[:200]}"


def load_level(url: str, picture: bytes, clients: int, requests: int) -> dict:
    """`requests` requests from `clients` threads at once (each its share, one after another)."""
    shares = [requests // clients + (index < requests % clients) for index in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []  # requests that failed, each why
    errors: list[BaseException] = []  # the client threads' own faults, not the server's
    start = threading.Barrier(clients + 1)

    def client_thread(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            post(client, url, picture)  # open the connection before the clock starts
            start.wait()
            try:
                for _ in range(shares[index]):
                    answer = attempt(client, url, picture)
                    (failures if isinstance(answer, str) else latencies[index]).append(answer)
            except BaseException as error:  # noqa: BLE001 - reported below, after the other threads finish
                errors.append(error)

    threads = [threading.Thread(target=client_thread, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    before_line = cpu_pressure()
    with Timer() as timer:
        start.wait()
        for thread in threads:
            thread.join()
    after_line = cpu_pressure()
    if errors:
        raise errors[0]
    seconds = np.array([value for share in latencies for value in share])
    if not len(seconds):
        raise RuntimeError(f"every request failed at {clients} clients: {failures[0]}")
    return {
        "clients": clients,
        "requests": len(seconds) + len(failures),
        "failed": len(failures),
        "failures": failures[:10],
        "p50_ms": float(np.percentile(seconds, 50) * 1000),
        "p99_ms": float(np.percentile(seconds, 99) * 1000),
        "mean_ms": float(seconds.mean() * 1000),
        "max_ms": float(seconds.max() * 1000),
        "throughput_per_s": len(seconds) / timer.seconds,
        "wall_seconds": timer.seconds,
        "cpu_pressure_before": before_line,
        "cpu_pressure_after": after_line,
        "cpu_stall_percent": None if timer.stall_share is None else 100 * timer.stall_share,
    }


COLUMNS = [
    Column("clients", lambda row: str(row["clients"])),
    Column("requests", lambda row: str(row["requests"])),
    Column("failed", lambda row: str(row["failed"])),
    Column("p50 ms", lambda row: f"{row['p50_ms']:.1f}"),
    Column("p99 ms", lambda row: f"{row['p99_ms']:.1f}"),
    Column("mean ms", lambda row: f"{row['mean_ms']:.1f}"),
    Column("max ms", lambda row: f"{row['max_ms']:.1f}"),
    Column("requests/s", lambda row: f"{row['throughput_per_s']:.0f}"),
    Column("CPU stall %", lambda row: benchmark_report.number(row["cpu_stall_percent"], 0)),
]


def markdown(result: dict) -> str:
    setup, levels = result["setup"], result["levels"]
    one = next((row for row in levels if row["clients"] == 1), None)
    lines = [
        "# Serving latency: POST /predict of `digitlab serve`",
        "",
        *common.header_lines(result),
        f"- model: {setup['model']}; server: uvicorn {setup['uvicorn']}, fastapi {setup['fastapi']}, one process "
        f"on 127.0.0.1, clients in this process (httpx {setup['httpx']}, one keep-alive connection each)",
        f"- each request: a {setup['picture_bytes']}-byte 280x280 PNG of a drawn 7 (what the page sends); "
        f"{setup['warmup']} un-timed warm-up requests first",
        f"- command: `{result['command']}`",
        "",
        *benchmark_report.markdown_table(levels, COLUMNS),
        "",
    ]
    if one:
        met = "met" if one["p50_ms"] < TARGET_P50_MS else "NOT met"
        lines.append(f"- target p50 < {TARGET_P50_MS:.0f} ms at one client: {met} ({one['p50_ms']:.1f} ms)")
    failed = sum(row["failed"] for row in levels)
    lines.append(
        f"- failed requests: {'none' if not failed else failed} of {sum(row['requests'] for row in levels)}"
        + "".join(f"; {row['clients']} clients: {', '.join(row['failures'])}" for row in levels if row["failed"])
    )
    lines += [
        "- latency: from sending a request to having read its whole answer, in the client, of the requests answered "
        "200 (a failed one is counted, not timed); requests/s: the "
        "level's requests over its wall time; CPU stall %: growth of /proc/pressure/cpu's `some` total over "
        "the level's wall time (clients and server share the cores, so some stall is the load itself)",
        *benchmark_report.pressure_lines(levels, lambda row: f"{row['clients']} clients"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("model", nargs="?", help="run directory or .onnx file (default: the shipped model)")
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients per level, comma-separated")
    parser.add_argument("--requests", type=common.positive, default=300, help="timed requests per level, in all")
    parser.add_argument("--warmup", type=common.count, default=30, help="un-timed requests before the levels")
    common.add_out(parser)
    args = parser.parse_args(argv)
    levels = [common.positive(value) for value in args.clients.split(",")]

    import fastapi
    import uvicorn

    picture = drawn_seven()
    info = benchmark_report.machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="digitlab-serve-latency-") as folder:
        with running_server(args.model, Path(folder) / "serve.log") as url:
            model = httpx.get(url + "health").json()["model"]
            log(f"serving {model} at {url}; {args.warmup} warm-up requests")
            with httpx.Client(timeout=30) as client:
                for _ in range(args.warmup):
                    post(client, url, picture)
            for clients in levels:
                row = load_level(url, picture, clients, max(args.requests, clients))
                rows.append(row)
                log(
                    f"{clients} clients: p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                    f"{row['failed']} failed, "
                    f"{row['throughput_per_s']:.0f} requests/s, "
                    f"CPU stall {benchmark_report.number(row['cpu_stall_percent'], 0)} %"
                )
    setup = {"model": model, "picture_bytes": len(picture), "warmup": args.warmup, "requests": args.requests}
    setup |= {"uvicorn": uvicorn.__version__, "fastapi": fastapi.__version__, "httpx": httpx.__version__}
    result = common.results(info, torch=info["torch"], setup=setup, levels=rows, target_p50_ms=TARGET_P50_MS)
    stem = Path(args.out) / "serve_latency"
    common.save_report(stem, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
