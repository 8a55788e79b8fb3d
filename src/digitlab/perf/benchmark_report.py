"""The pieces of a benchmark report: progress lines on stderr (log), the time (now), the machine the numbers
were measured on (machine, machine_lines), Markdown tables (Column, markdown_table, number), and notes on how
busy the CPU was: before and after each measurement (pressure_lines), and during timing (stall_lines).

Every report says what machine it ran on (CPU model and features, cores, threads, versions, CPU pressure):
bf16 is fast only where the CPU has avx512_bf16 or AMX, and a busy neighbour inflates every time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from digitlab.perf.machine import cpu_features, cpu_kernels, cpu_model, cpu_pressure, physical_cores

STALL_WARNING = 0.10  # above this share of a timed run spent with a task waiting for a CPU, say so


def log(*parts) -> None:
    """A progress line, on stderr: stdout carries the report."""
    print(*parts, file=sys.stderr, flush=True)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def machine(threads: int | None = None) -> dict:
    """The machine, as a report records it; `threads`: the torch threads the measured work uses (default:
    this process's). cpu_pressure is read now: call this before measuring."""
    return {
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_kernels": cpu_kernels(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cpu_pressure": cpu_pressure(),
    }


def features_text(features: dict[str, bool]) -> str:
    """ "avx2, avx512f; without avx512_bf16, amx_tile, amx_bf16"."""
    have = [name for name, present in features.items() if present]
    lack = [name for name, present in features.items() if not present]
    return ", ".join(have) + ("; " if have and lack else "") + ("without " + ", ".join(lack) if lack else "")


def kernels_text(kernels: dict) -> str:
    """ "ATen AVX2, oneDNN narrowed to AVX2, no bf16 LSTM in oneDNN, bf16 emulated"."""
    narrowed = kernels["onednn_max_isa"]
    return (
        f"ATen {kernels['aten_capability']}, oneDNN {'narrowed to ' + narrowed if narrowed else 'not narrowed'}, "
        f"{'bf16 LSTM in oneDNN' if kernels['onednn_bf16_lstm'] else 'no bf16 LSTM in oneDNN'}, "
        f"bf16 {'native' if kernels['bf16_native'] else 'emulated'}"
    )


def machine_lines(info: dict) -> list[str]:
    """machine()'s record as the Markdown header lines of a report."""
    return [
        f"- machine: {info['cpu']}, {info['physical_cores']} physical cores ({info['logical_cpus']} logical CPUs), "
        f"{info['threads']} torch threads, torch {info['torch']}, python {info['python']}",
        f"- CPU features: {features_text(info['cpu_features'])}",
        f"- CPU kernels: {kernels_text(info['cpu_kernels'])}",
        f"- cpu pressure before: {info['cpu_pressure']}",
    ]


@dataclass
class Column:
    """A Markdown table column: its heading, and the cell's text for a row."""

    heading: str
    cell: Callable[[dict], str]
    align: str = "right"  # or "left", "center"


def table_header(columns: list[Column]) -> list[str]:
    return [
        "| " + " | ".join(c.heading for c in columns) + " |",
        "|" + "|".join({"left": ":---", "center": ":---:"}.get(c.align, "---:") for c in columns) + "|",
    ]


def table_row(row: dict, columns: list[Column]) -> str:
    return "| " + " | ".join(c.cell(row) for c in columns) + " |"


def markdown_table(rows: list[dict], columns: list[Column]) -> list[str]:
    return table_header(columns) + [table_row(row, columns) for row in rows]


def number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def pressure_lines(rows: list[dict], name: Callable[[dict], str]) -> list[str]:
    """Each row's CPU pressure before and after its measurement (cpu_pressure_before and cpu_pressure_after:
    perf.machine.cpu_pressure's lines), one list item a row, named by `name(row)`."""
    return [
        f"- {name(row)}: pressure before `{row['cpu_pressure_before']}`, after `{row['cpu_pressure_after']}`"
        for row in rows
    ]


def stall_lines(shares: dict[str, float]) -> list[str]:
    """What perf.compare.stall_shares found (name -> the largest stall share of its runs), with a warning
    when other processes competed for the cores."""
    if not shares:
        return ["CPU stall during the timed runs: unknown (no /proc/pressure/cpu)"]
    lines = [
        "CPU stall during the timed runs (share of each run's wall time in which some task waited for a CPU, "
        "/proc/pressure/cpu): " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    ]
    if max(shares.values()) > STALL_WARNING:
        lines.append(
            f"WARNING: above {STALL_WARNING:.0%}, other processes competed for the cores during timing; "
            f"these times measure the contention, not the code. Rerun on a quiet machine."
        )
    return lines
