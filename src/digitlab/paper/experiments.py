"""Named experiments as plain grids of TrainConfigs, run cell by cell into ordinary run directories.

Every cell is one run directory under OUT/cells/, so it can be inspected, evaluated or rerun alone.
Started again, `reproduce` skips finished cells and resumes a half-done one from its last checkpoint;
with --retime it first moves the finished table cells timed under CPU contention aside (paper.contention).

With a shard (--shard K/N, or a Slurm array task) a process runs only its share of the cells (digitlab.shard),
so that several processes, on one machine or many sharing OUT, split a grid; each cell is its own run
directory with its own lock, and the manifest they share is updated under a lock, so shards may run at once.
The manifest records every cell any command planned, so that the report can name the ones not finished.
Figure 3's tuned cells exist once the whole learning-rate search has finished: the shard that finishes it runs
its share of them, and the others' shares run when the same command runs again (a second array job).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from digitlab.config import RESUMABLE_CHANGES, SPEED_ONLY, TrainConfig
from digitlab.data.dataset import Dataset, load
from digitlab.errors import ConfigError, Interrupted, TrainingError
from digitlab.paper import contention
from digitlab.shard import WHOLE, Shard
from digitlab.store import lock, rundir
from digitlab.store.checkpoint import list_checkpoints
from digitlab.store.files import read_json, write_json
from digitlab.training.fit import fit

PAPER_TABLES = {"table2": (1000, 4), "table3": (640, 8), "table4": (500, 12)}  # batch size, epochs
TABLE_ROWS = (("lstm", "paper"), ("blstm", "paper"), ("blstm", "final"))  # (model, BLSTM head)
FIGURE3_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
FIGURE3_BATCH, FIGURE3_EPOCHS = 1000, 3  # the paper gives no batch size for Figure 3; Table 2's is used
LR_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # the tuned panel's search, on a validation split
VAL_SIZE = 10_000
QUICK = {"train_limit": 2000, "test_limit": 500}  # --quick: a slice of the data, for smoke tests and CI
MANIFEST = "reproduce.json"
MANIFEST_LOCK = ".reproduce.lock"  # held while a process updates the manifest (shards update it at once)
FAILED = "failed.json"  # a cell whose training diverged: kept as a result, not retried


@dataclass(frozen=True)
class Cell:
    name: str  # folder name under OUT/cells/
    experiment: str  # table2, table3, table4 or figure3
    role: str  # "table", "fixed" (Figure 3 at lr 0.001), "select" (lr search), "tuned" (best lr)
    config: TrainConfig


def cell_name(config: TrainConfig, role: str) -> str:
    head = f"-{config.blstm_head}" if config.model == "blstm" else ""
    val = f"-val{config.val_size}" if config.val_size else ""
    return (
        f"{role}-{config.model}{head}-{config.optimizer}-lr{config.lr:g}-b{config.batch_size}"
        f"-e{config.epochs}{val}-s{config.seed}"
    )


def _cell(experiment: str, role: str, base: TrainConfig, **settings) -> Cell:
    config = base.replace(**settings)
    return Cell(cell_name(config, role), experiment, role, config)


def table_cells(name: str, base: TrainConfig, seeds: list[int]) -> list[Cell]:
    batch_size, epochs = PAPER_TABLES[name]
    return [
        _cell(
            name,
            "table",
            base,
            model=model,
            blstm_head=head,
            optimizer="adam",
            lr=0.001,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
        )
        for seed in seeds
        for model, head in TABLE_ROWS
    ]


def figure3_cells(base: TrainConfig, seeds: list[int], best_lr: dict[str, float] | None) -> list[Cell]:
    """Fixed-lr and lr-search cells; the tuned cells once `best_lr` (from the search) is known."""
    common = dict(model="lstm", batch_size=FIGURE3_BATCH, epochs=FIGURE3_EPOCHS)
    cells = [
        _cell("figure3", "fixed", base, optimizer=name, lr=0.001, seed=seed, **common)
        for seed in seeds
        for name in FIGURE3_OPTIMIZERS
    ]
    # The search uses the first seed only and a validation split: the test set never picks a setting.
    val_size = VAL_SIZE if not base.train_limit else base.train_limit // 5  # quick runs hold out a fifth
    cells += [
        _cell("figure3", "select", base, optimizer=name, lr=lr, seed=seeds[0], val_size=val_size, **common)
        for name in FIGURE3_OPTIMIZERS
        for lr in LR_GRID
    ]
    if best_lr is not None:
        cells += [
            _cell("figure3", "tuned", base, optimizer=name, lr=best_lr[name], seed=seed, **common)
            for seed in seeds
            for name in FIGURE3_OPTIMIZERS
        ]
    return cells


EXPERIMENTS = ("table2", "table3", "table4", "figure3")


def expand(names: list[str]) -> list[str]:
    chosen = []
    for name in names:
        if name == "all":
            chosen += list(EXPERIMENTS)
        elif name in EXPERIMENTS:
            chosen.append(name)
        else:
            raise ConfigError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)} or all")
    return list(dict.fromkeys(chosen))


def plan(names: list[str], base: TrainConfig, seeds: list[int], out: Path) -> list[Cell]:
    cells = []
    for name in names:
        if name == "figure3":
            cells += figure3_cells(base, seeds, best_learning_rates(out, base, seeds))
        else:
            cells += table_cells(name, base, seeds)
    return cells


def best_learning_rates(out: Path, base: TrainConfig, seeds: list[int]) -> dict[str, float] | None:
    """Per optimizer, the lr with the best final validation accuracy; None until every search cell is done."""
    search = [c for c in figure3_cells(base, seeds, None) if c.role == "select"]
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for cell in search:
        folder = out / "cells" / cell.name
        if (folder / FAILED).exists():
            score = (-1.0, float("-inf"))  # diverged: ranks below every finished setting
        elif rundir.is_finished(folder):
            final = read_json(folder / rundir.RESULT)["final"]
            score = (final["val/acc"], -final["val/loss"])
        else:
            return None
        scores.setdefault(cell.config.optimizer, []).append((*score, cell.config.lr))
    return {name: max(entries)[2] for name, entries in scores.items()}


def check_manifest(out: Path, manifest: dict) -> None:
    """Refuse an output folder made for other experiments or settings; never overwrite its cells."""
    path = out / MANIFEST
    if not path.exists():
        return
    previous = read_json(path)
    for key in ("quick", "precision"):
        if previous.get(key) != manifest[key]:
            raise ConfigError(
                f"{out} holds a reproduction with {key}={previous.get(key)!r}, not {manifest[key]!r}; "
                f"choose another --out"
            )


def check_cell(folder: Path, cell: Cell) -> None:
    """A cell folder must hold the run this cell describes, or nothing yet."""
    if not (folder / rundir.CONFIG).exists():
        return
    saved = rundir.load_config(folder)
    free = RESUMABLE_CHANGES | SPEED_ONLY  # these change speed or records, not the experiment
    differs = sorted(
        name for name, value in cell.config.to_dict().items() if name not in free and getattr(saved, name) != value
    )
    if differs:
        raise ConfigError(
            f"{folder} holds a run whose config no longer matches its cell ({', '.join(differs)} "
            f"differ); move it away or choose another --out"
        )


def status(folder: Path) -> str:
    if (folder / FAILED).exists():
        return "diverged"
    if rundir.is_finished(folder):
        return "done"
    return "partial" if (folder / rundir.CONFIG).exists() else "todo"


def estimate_seconds(cell: Cell, examples: int) -> float:
    """A rough time for a cell from measured per-example costs on a 2-core CPU (fp32, batch 500)."""
    per_example = {
        "lstm": 1.4e-4,
        "gru": 1.2e-4,
        "mlp": 1e-5,
        "cnn": 5.5e-4,
        "blstm": 3.0e-4 if cell.config.blstm_head == "paper" else 4.5e-4,
    }[cell.config.model]
    return cell.config.epochs * examples * per_example


def shard_order(cells: list[Cell]) -> list[Cell]:
    """The plan's order with figure3's tuned cells last: the order shards split, so that the tuned cells, which
    appear once the search has finished, leave every other cell in the shard it had before."""
    return [c for c in cells if c.role != "tuned"] + [c for c in cells if c.role == "tuned"]


def update_manifest(out: Path, manifest: dict, command: str, cells: list[Cell]) -> None:
    """Merge this command's experiments, seeds, command line and planned cells (every shard's, not only its
    own) into OUT/reproduce.json, under the manifest's lock: shards starting at once each add theirs."""
    out.mkdir(parents=True, exist_ok=True)
    with lock.waiting(out / MANIFEST_LOCK):
        check_manifest(out, manifest)  # again: another process may have made the folder since the first check
        previous = read_json(out / MANIFEST) if (out / MANIFEST).exists() else {}
        merged = manifest | {
            "experiments": list(dict.fromkeys(previous.get("experiments", []) + manifest["experiments"])),
            "seeds": sorted(set(previous.get("seeds", [])) | set(manifest["seeds"])),
            "commands": list(dict.fromkeys(previous.get("commands", []) + [command])),
            "cells": sorted(set(previous.get("cells", [])) | {cell.name for cell in cells}),
        }
        if merged != previous:
            write_json(out / MANIFEST, merged)


def unfinished(out: Path) -> list[tuple[str, str]]:
    """(cell, status) of every cell the manifest records as planned that has not finished (nor diverged), in
    name order; figure3's tuned cells are named before they are planned, as one entry, while the search runs.
    A manifest written before cells were recorded names none."""
    manifest = read_json(out / MANIFEST)
    names = manifest.get("cells", [])
    said = {"todo": "not started", "partial": "started, not finished"}
    missing = [(name, said[state]) for name in names if (state := status(out / "cells" / name)) in said]
    if "figure3" in manifest["experiments"] and names and not any(name.startswith("tuned-") for name in names):
        missing.append(("figure3's tuned cells", "planned once the learning-rate search has finished"))
    return missing


def run_cells(cells: list[Cell], out: Path, dataset: Dataset, log=print) -> list[Cell]:
    """Train the cells that are not finished, in order; return those it trained."""
    ran = []
    for index, cell in enumerate(cells, 1):
        folder = out / "cells" / cell.name
        state = status(folder)
        if state in ("done", "diverged"):
            continue
        log(f"[{index}/{len(cells)}] {cell.name} ({'resuming' if state == 'partial' else 'starting'})")
        config = cell.config.replace(run_dir=str(folder))
        resuming = state == "partial" and bool(list_checkpoints(folder / rundir.CHECKPOINTS))
        if state == "partial" and not resuming:
            with lock.holding(folder):  # unless another process is training it right now
                # Killed before its first checkpoint: nothing to keep, start the cell again. The lock file stays
                # (store/lock.py: a deleted lock file could let two processes lock two files of one name).
                for entry in folder.iterdir():
                    if entry.name != lock.LOCK:
                        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        started = time.perf_counter()
        try:
            fit(config, dataset=dataset, resuming=resuming, log=log)
        except Interrupted:
            raise  # a signal stops the whole grid; the cell resumes from its checkpoint next time
        except TrainingError as error:
            write_json(folder / FAILED, {"reason": str(error)})
            log(f"  diverged, recorded as a result: {error}")
        log(f"  {time.perf_counter() - started:.1f} s")
        ran.append(cell)
    return ran


def reproduce(
    names: list[str],
    out: Path,
    seeds: list[int],
    base: TrainConfig,
    quick: bool,
    dry_run: bool,
    command: str,
    retime: bool = False,
    log=print,
    shard: Shard = WHOLE,
) -> list[Cell]:
    """Run this shard's cells (all of them unless `shard` says otherwise) into OUT/cells, but the finished ones;
    with `retime`, first move the finished table cells of the shard whose timing ran under contention to
    OUT/retimed/ so that they run again. Return the shard's cells (with a dry run: the ones it would run)."""
    names = expand(names)
    if quick:
        base, seeds = base.replace(**QUICK), seeds[:1]
    base = base.replace(progress="none")
    manifest = {"experiments": names, "seeds": seeds, "quick": quick, "precision": base.precision}
    check_manifest(out, manifest)
    cells = shard_order(plan(names, base, seeds, out))
    for cell in cells:
        check_cell(out / "cells" / cell.name, cell)
    mine = shard.take(cells)
    if not shard.whole:
        origin = f" (from {shard.source})" if shard.source else ""
        log(f"shard {shard}{origin}: {len(mine)} of the {len(cells)} cells planned so far")
    if dry_run:
        return mine
    dataset = load(base.data_dir, log=log)
    update_manifest(out, manifest, command, cells)
    retimed = retime_cells(mine, out) if retime else []
    for cell in retimed:
        aside = contention.move_aside(out / "cells" / cell.name, out)
        log(f"retiming {cell.name}: its timing ran under CPU contention; the old run is kept in {aside}")
    if retime and not retimed:
        log("--retime: no finished table cell ran under CPU contention; nothing to retime")
    ran = run_cells(mine, out, dataset, log)
    if "figure3" in names:  # once the whole search has finished (here or in other shards) the tuned cells exist
        cells = shard_order(plan(names, base, seeds, out))
        update_manifest(out, manifest, command, cells)
        tuned = [c for c in shard.take(cells) if c.role == "tuned"]
        ran += run_cells(tuned, out, dataset, log)
        mine = shard.take(cells)
        if not any(c.role == "tuned" for c in cells):
            waiting = sum(
                status(out / "cells" / c.name) not in ("done", "diverged") for c in cells if c.role == "select"
            )
            log(
                f"figure3's tuned cells wait for the learning-rate search ({waiting} search cells of other shards "
                f"unfinished); run this command again once every shard has finished, and they run then"
            )
    if not shard.whole:
        trained = f": {', '.join(c.name for c in ran)}" if ran else ""
        before = f" ({len(mine) - len(ran)} had finished before)" if len(ran) < len(mine) else ""
        log(f"shard {shard} trained {len(ran)} of its {len(mine)} cells{before}{trained}")
    return mine


def retime_cells(cells: list[Cell], out: Path) -> list[Cell]:
    """The finished table cells whose timing ran under CPU contention (paper.contention): what --retime reruns."""
    return [c for c in cells if c.role == "table" and contention.needs_retime(out / "cells" / c.name)]


def describe(cells: list[Cell], out: Path, examples: int, retime: bool = False) -> str:
    lines, total, again = [], 0.0, {c.name for c in retime_cells(cells, out)} if retime else set()
    for cell in cells:
        state = "retime" if cell.name in again else status(out / "cells" / cell.name)
        seconds = (
            0.0
            if state in ("done", "diverged")
            else estimate_seconds(cell, (cell.config.train_limit or examples) - cell.config.val_size)
        )
        total += seconds
        lines.append(f"{cell.name:<60} {state:>8}  ~{seconds / 60:5.1f} min")
    if any(c.experiment == "figure3" for c in cells) and not any(c.role == "tuned" for c in cells):
        lines.append("(figure3's tuned cells are added once the learning-rate search has finished)")
    if retime:
        lines.append(f"--retime: {len(again)} cells ran under CPU contention; they move to {out / contention.RETIMED}/")
    lines.append(f"{len(cells)} cells, about {total / 60:.0f} min of training left on a 2-core CPU")
    return "\n".join(lines)
