"""What the benchmark scripts share that belongs to this repository: where its data and results lie (REPO,
RESULTS, data_dir, add_data_dir, load_data), their command lines (parser, add_out, the argparse types positive,
count and names; command: how a script was started), a result's wrapper (results: date, machine, command;
header_lines) and its files (save_json, save_report).

The scripts run as `python benchmarks/<name>.py`, which puts this folder on sys.path: `import common`.
What is not about this repository (logging, the machine header, tables) is in digitlab.perf.benchmark_report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from digitlab.data.dataset import Dataset, load, prepare
from digitlab.data.fetch import find_files
from digitlab.perf.benchmark_report import log, machine_lines, now
from digitlab.store.files import write_json

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"  # the MNIST copy shared by the checkouts beside this one
RESULTS = REPO / "benchmarks" / "results"


def parser(doc: str) -> argparse.ArgumentParser:
    """A script's parser: its docstring's first paragraph as the description, each option's default in --help."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def add_out(parser: argparse.ArgumentParser) -> None:
    """--out: the folder a save_report() script writes STEM.json and STEM.md to (default: RESULTS)."""
    parser.add_argument("--out", default=str(RESULTS), help="folder for the .json and .md results")


def add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="a run directory or .onnx file (default: the shipped model)")


def percent(share: float | None) -> str:
    """A share as a percentage with two decimals for a results table; "-" where there is none."""
    return "-" if share is None else f"{100 * share:.2f}"


def data_dir(given: str | None) -> str | None:
    """--data-dir, else the shared MNIST copy beside the repository when it holds the four files, else None
    (digitlab's own fetch chain: $DIGITLAB_DATA_DIR, the cache, the mirrors, npm)."""
    if given:
        return given
    return str(SHARED_MNIST) if find_files(SHARED_MNIST) is not None else None


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"folder with the four IDX files (default: {SHARED_MNIST} when present, else digitlab's fetch chain)",
    )


def load_data(given: str | None, train_limit: int = 0) -> Dataset:
    """The data set a benchmark trains on: data_dir(given), its first `train_limit` training examples (0: all)."""
    return prepare(load(data_dir(given), log=log), train_limit=train_limit)


def command() -> str:
    """How this script was started, for the report."""
    return " ".join([Path(sys.executable).name, *sys.argv])


def positive(text: str) -> int:
    """argparse type: an integer above 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def count(text: str) -> int:
    """argparse type: an integer of 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def names(choices) -> Callable[[str], list[str]]:
    """argparse type: a comma-separated list of distinct names from `choices`, at least one."""

    def parse(text: str) -> list[str]:
        given = [name.strip() for name in text.split(",") if name.strip()]
        wrong = [name for name in given if name not in choices]
        if wrong or not given or len(set(given)) != len(given):
            raise argparse.ArgumentTypeError(f"{text!r}: give one or more of {', '.join(choices)}, each at most once")
        return given

    return parse


def results(machine: dict, **fields) -> dict:
    """A benchmark's results as its JSON holds them: the date (now), the machine (benchmark_report.machine(),
    read before measuring) and the command that started the script, then `fields`."""
    return {"date": now(), "machine": machine, "command": command(), **fields}


def header_lines(result: dict) -> list[str]:
    """The date and the machine of a result (results(), or any with those two keys) as a Markdown report's first
    list items."""
    return [f"- date: {result['date']}", *machine_lines(result["machine"])]


def save_json(path: str | Path, value) -> None:
    """Write a report's results as JSON (atomically), making the folder if needed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(path), value)


def save_report(stem: Path, result: dict, text: str) -> None:
    """A benchmark's results as STEM.json and its Markdown report as STEM.md, also printed."""
    save_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(text)
    print(text)
