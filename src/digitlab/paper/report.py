"""The reproduction report: REPORT.md, figures (PNG), and the numbers as CSV and JSON, built from the
run directories under OUT/cells alone (so `digitlab report OUT` needs no training, and the cells may come from
several processes or machines: the shards of an array job). It names the planned cells that have not finished,
and the machines the cells ran on when they differ."""

from __future__ import annotations

import csv
import io
import json
import platform
from importlib import resources
from pathlib import Path

import torch

from digitlab.errors import ConfigError
from digitlab.paper import contention
from digitlab.paper.cells import FAILED, unfinished
from digitlab.paper.grid import PAPER_TABLES
from digitlab.paper.manifest import MANIFEST, MANIFEST_LOCK
from digitlab.paper.sections import figure3_section, key_table, table_section
from digitlab.store import lock, rundir
from digitlab.store.files import read_json, read_rows, write_json

CSV_FIELDS = [
    "experiment",
    "role",
    "cell",
    "model",
    "blstm_head",
    "optimizer",
    "lr",
    "batch_size",
    "seed",
    "epoch",
    "train_seconds",
    "eval_seconds",
    "train_loss",
    "test_loss",
    "test_acc",
    "val_acc",
    "cpu_pressure_avg10",
]


def paper_tables() -> dict:
    return json.loads(resources.files("digitlab.paper").joinpath("tables.json").read_text())


def collect(out: Path) -> list[dict]:
    """One record per cell folder: its config, its per-epoch rows and per-step losses."""
    cells_folder = out / "cells"
    if not (out / MANIFEST).exists() or not cells_folder.is_dir():
        raise ConfigError(f"{out} holds no reproduction (no {MANIFEST} or cells/); run 'digitlab reproduce' first")
    records = []
    for folder in sorted(cells_folder.iterdir()):
        if not (folder / rundir.CONFIG).exists():
            continue
        role = folder.name.split("-", 1)[0]
        record = {
            "cell": folder.name,
            "role": role,
            "config": rundir.load_config(folder).to_dict(),
            "finished": rundir.is_finished(folder),
            "diverged": (folder / FAILED).exists(),
            "epochs": read_rows(folder / rundir.METRICS),
            "env": read_json(folder / rundir.ENV),
        }
        record["contended"] = contention.contended(record["epochs"])  # timing under CPU contention
        if role in ("fixed", "tuned"):
            record["step_losses"] = [row["train/loss"] for row in read_rows(folder / rundir.STEPS)]
        if record["finished"]:
            record["result"] = read_json(folder / rundir.RESULT)
        records.append(record)
    return records


def build(out: Path) -> Path:
    """Write OUT/REPORT.md, OUT/figures/*.png, OUT/results.csv and OUT/results.json; return the report's path.
    Under the manifest's lock: two shards finishing the grid at once build it one after the other."""
    out = Path(out)
    records = collect(out)
    with lock.waiting(out / MANIFEST_LOCK):
        return _build(out, records)


def _build(out: Path, records: list[dict]) -> Path:
    manifest = read_json(out / MANIFEST)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    paper = paper_tables()
    lines, summaries, sections = header(manifest, records, unfinished(out)), {}, []
    for name in ("table2", "table3", "table4"):
        if name in manifest["experiments"]:
            section, summaries[name] = table_section(name, records, paper, figures)
            sections += section
    lines += key_table(records, paper)
    if sections:
        lines += contention.explanation(records)
    lines += sections
    if "figure3" in manifest["experiments"]:
        section, summaries["figure3"] = figure3_section(records, figures)
        lines += section
    write_json(
        out / "results.json",
        {
            "manifest": manifest,
            "summaries": summaries,
            "cells": [{k: v for k, v in r.items() if k != "step_losses"} for r in records],
        },
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for record in records:
        config = record["config"]
        for row in record["epochs"]:
            writer.writerow(
                {
                    "experiment": experiment_of(record),
                    "role": record["role"],
                    "cell": record["cell"],
                    "model": config["model"],
                    "blstm_head": config["blstm_head"],
                    "optimizer": config["optimizer"],
                    "lr": config["lr"],
                    "batch_size": config["batch_size"],
                    "seed": config["seed"],
                    "epoch": row["epoch"],
                    "train_seconds": row["train/seconds"],
                    "eval_seconds": row["eval/seconds"],
                    "train_loss": row["train/loss"],
                    "test_loss": row["test/loss"],
                    "test_acc": row["test/acc"],
                    "val_acc": row.get("val/acc", ""),
                    "cpu_pressure_avg10": contention.pressure(row),
                }
            )
    (out / "results.csv").write_text(buffer.getvalue())
    report = out / "REPORT.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def experiment_of(record: dict) -> str:
    config = record["config"]
    if record["role"] != "table":
        return "figure3"
    return next(
        name
        for name, (batch, epochs) in PAPER_TABLES.items()
        if (batch, epochs) == (config["batch_size"], config["epochs"])
    )


def machines(records: list[dict]) -> str:
    """The machines the cells ran on (device, threads, torch), with how many cells each when they differ."""
    counts: dict[str, int] = {}
    for record in records:
        env = record["env"]
        name = (
            f"{env.get('device_name', platform.processor())}, {env.get('threads', '?')} threads, "
            f"torch {env.get('torch', torch.__version__)}, Python {env.get('python', platform.python_version())}"
        )
        counts[name] = counts.get(name, 0) + 1
    if len(counts) <= 1:
        return "- Machine: " + next(iter(counts), f"{platform.processor()}, torch {torch.__version__}")
    return "- Machines (the cells ran on several; seconds from different machines do not compare): " + "; ".join(
        f"{name} ({count} cells)" for name, count in counts.items()
    )


def header(manifest: dict, records: list[dict], missing: list[tuple[str, str]] = ()) -> list[str]:
    lines = []
    if manifest["quick"]:
        lines.append(
            "**QUICK RUN: a small slice of the data and one seed, for smoke tests; these numbers are not "
            "comparable to the paper.**"
        )
        lines.append("")
    seconds = sum(row["train/seconds"] + row["eval/seconds"] for r in records for row in r["epochs"])
    finished = sum(r["finished"] or r["diverged"] for r in records)
    started = f"{len(records)} started"
    cells = f"of {len(manifest['cells'])} planned, {started}" if manifest.get("cells") else f"of {started}"
    lines += [
        "# Reproduction of Su (2018), Tables 2-4 and Figure 3",
        "",
        "- Made by: " + "; then ".join(f"`{command}`" for command in manifest.get("commands", [])),
        f"- Precision: {manifest['precision']}; seeds: {', '.join(map(str, manifest['seeds']))}",
        machines(records),
        f"- Cells: {finished} finished {cells}; training + evaluation time recorded in them: {seconds / 60:.1f} min",
        "- `blstm-paper` is the paper's head (`out[:, -1, :]`); it skips the 27 reverse steps of the top layer "
        "that this head never reads (same outputs and gradients), so it runs faster than the paper's code "
        "would. `blstm-final` classifies from both directions' final states and runs the whole BLSTM.",
        "",
    ]
    if missing:
        lines += [
            f"**Incomplete: {len(missing)} planned cells have not finished** (still running, e.g. in another "
            f"shard, stopped, or not started); the tables below leave them out:",
            "",
            *(f"- `{name}`: {state}" for name, state in missing),
            "",
        ]
    return lines
