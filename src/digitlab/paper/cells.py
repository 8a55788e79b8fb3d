"""Running a reproduction's grid (paper.grid) cell by cell into ordinary run directories, OUT/cells/<cell>/.

Holds a cell folder's state (FAILED, status, check_cell), the learning rates Figure 3's search chose
(best_learning_rates), the cells planned but not finished (unfinished), training the cells (run_cells),
the cells --retime reruns (retime_cells), the whole `reproduce` command's work (reproduce) and its dry run's
listing (describe).

Every cell is one run directory, so it can be inspected, evaluated or rerun alone. Started again, `reproduce`
skips finished cells and resumes a half-done one from its last checkpoint; with --retime it first moves the
finished table cells timed under CPU contention aside (paper.contention).

With a shard (--shard K/N, or a Slurm array task) a process runs only its share of the cells (digitlab.shard),
so that several processes, on one machine or many sharing OUT, split a grid; each cell is its own run
directory with its own lock, and the manifest they share is updated under a lock (paper.manifest), so shards
may run at once. Figure 3's tuned cells exist once the whole learning-rate search has finished: the shard that
finishes it runs its share of them, and the others' shares run when the same command runs again (a second
array job).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from digitlab.config import RESUMABLE_CHANGES, SPEED_ONLY, TrainConfig
from digitlab.data.dataset import Dataset, load
from digitlab.errors import ConfigError, Interrupted, TrainingError
from digitlab.paper import contention
from digitlab.paper.grid import QUICK, Cell, estimate_seconds, expand, figure3_cells, plan, shard_order
from digitlab.paper.manifest import MANIFEST, check_manifest, update_manifest
from digitlab.shard import WHOLE, Shard
from digitlab.store import lock, rundir
from digitlab.store.checkpoint import list_checkpoints
from digitlab.store.files import read_json, write_json
from digitlab.training.fit import fit

FAILED = "failed.json"  # a cell whose training diverged: kept as a result, not retried


def status(folder: Path) -> str:
    if (folder / FAILED).exists():
        return "diverged"
    if rundir.is_finished(folder):
        return "done"
    return "partial" if (folder / rundir.CONFIG).exists() else "todo"


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


def planned(names: list[str], base: TrainConfig, seeds: list[int], out: Path) -> list[Cell]:
    """The cells of `names` as OUT lets them be planned now (Figure 3's tuned ones once its search is done), in
    the order shards split them."""
    best_lr = best_learning_rates(out, base, seeds) if "figure3" in names else None
    return shard_order(plan(names, base, seeds, best_lr))


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


def retime_cells(cells: list[Cell], out: Path) -> list[Cell]:
    """The finished table cells whose timing ran under CPU contention (paper.contention): what --retime reruns."""
    return [c for c in cells if c.role == "table" and contention.needs_retime(out / "cells" / c.name)]


def reproduce(
    names: list[str],
    out: Path,
    seeds: list[int],
    base: TrainConfig,
    *,
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
    cells = planned(names, base, seeds, out)
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
        cells = planned(names, base, seeds, out)
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


def describe(cells: list[Cell], out: Path, examples: int, retime: bool = False) -> str:
    """A dry run's listing: each cell, its state and a rough time left (grid.estimate_seconds), then the total."""
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
