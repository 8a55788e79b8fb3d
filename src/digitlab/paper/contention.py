"""Timings taken under contention: which cells' seconds ran while other tasks competed for the CPU, how the
report marks them, and moving such a cell aside so that `reproduce --retime` can run it again.

Every epoch row of a run records `cpu_pressure_avg10` (perf.machine): the percent of the last 10 s in which
some task on the machine waited for a CPU (null or absent where the kernel has no /proc/pressure, and in
older rows). A table cell is contended when any of its epochs recorded more than THRESHOLD. The pressure
is machine-wide: it cannot tell whether the waiting task was the run itself or its neighbour, so a marked
time is suspect, not proven slow. Only table cells are judged: Figure 3 reports no seconds.
"""

from __future__ import annotations

from pathlib import Path

from digitlab.errors import RunError
from digitlab.store import lock, rundir
from digitlab.store.files import read_rows

THRESHOLD = 10.0  # percent: cpu_pressure_avg10 above this at the end of any epoch marks the cell's timing
MARK = "†"  # after a seconds value that ran under contention
RETIMED = "retimed"  # OUT/retimed/<cell>-<n>: cells moved aside by --retime (never deleted)


def pressure(row: dict) -> float | None:
    value = row.get("cpu_pressure_avg10")
    return float(value) if isinstance(value, (int, float)) else None


def epoch_contended(row: dict) -> bool:
    value = pressure(row)
    return value is not None and value > THRESHOLD


def contended(rows: list[dict]) -> bool:
    """Whether any epoch row of a run recorded CPU pressure above THRESHOLD."""
    return any(epoch_contended(row) for row in rows)


def needs_retime(folder: Path) -> bool:
    """A finished run whose timing ran under contention."""
    return rundir.is_finished(folder) and contended(read_rows(folder / rundir.METRICS))


def marked(text: str, contended_flag: bool) -> str:
    return f"{text} {MARK}" if contended_flag else text


def explanation(records: list[dict]) -> list[str]:
    """The report's paragraph on contention: the threshold, once, and the list of contended table cells."""
    cells = [r for r in records if r["role"] == "table" and r["finished"] and contended(r["epochs"])]
    lines = [
        "## Timings under contention",
        "",
        f"{MARK} marks seconds from a cell in which, at the end of some epoch, other tasks had waited for a CPU "
        f"more than {THRESHOLD:g}% of the last 10 s (`cpu_pressure_avg10` in metrics.jsonl; the pressure is "
        f"machine-wide, so such a time is suspect, not proven slow). "
        f"`digitlab reproduce ... --retime` runs these cells again (the old folders are kept under `{RETIMED}/`).",
        "",
    ]
    if not cells:
        return lines + ["No table cell ran under contention.", ""]
    lines += [f"{len(cells)} table cell{'s' if len(cells) != 1 else ''} ran under contention:", ""]
    for record in cells:
        values = [value for row in record["epochs"] if (value := pressure(row)) is not None]
        over = sum(value > THRESHOLD for value in values)
        lines.append(
            f"- `{record['cell']}`: {over} of {len(record['epochs'])} epochs above {THRESHOLD:g}%, "
            f"highest {max(values):.1f}%"
        )
    return lines + [""]


def aside_path(out: Path, name: str) -> Path:
    """OUT/retimed/<name>-<n>, the first n from 1 not yet taken."""
    n = 1
    while (out / RETIMED / f"{name}-{n}").exists():
        n += 1
    return out / RETIMED / f"{name}-{n}"


def move_aside(folder: Path, out: Path) -> Path:
    """Move a cell's run directory to OUT/retimed/<cell>-<n> (refused while a process trains in it)."""
    target = aside_path(out, folder.name)
    with lock.holding(folder):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)
        except OSError as error:
            raise RunError(f"cannot move {folder} aside to {target}: {error.strerror or error}") from None
    return target
