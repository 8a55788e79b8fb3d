"""Atomic files and JSON records: a reader sees the old file or the whole new one, never a torn one."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from digitlab.errors import RunError


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the whole new one.

    The bytes go to a temporary file in the same folder (".<name>.<random>.tmp", a name no reader takes
    for the real file), which is flushed, fsynced and renamed over `path`; then the folder is fsynced.
    """
    path = Path(path)
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:  # 0o666 less the umask, as open() would give (mkstemp would make it private)
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that writes killed before their rename left in `folder`."""
    removed = [p for p in Path(folder).glob(".*.tmp") if p.is_file()] if Path(folder).is_dir() else []
    for leftover in removed:
        leftover.unlink(missing_ok=True)
    return removed


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_json(path: Path, value) -> None:
    atomic_write(path, (json.dumps(value, indent=2) + "\n").encode())


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing; is {Path(path).parent} a digitlab run directory?") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RunError(f"{path} is damaged ({error}); the run cannot be read") from None


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append JSON lines, fsynced: a crash loses at most the line being written."""
    if not rows:
        return
    with open(path, "a") as out:
        out.write("".join(json.dumps(row) + "\n" for row in rows))
        out.flush()
        os.fsync(out.fileno())


def read_rows(path: Path) -> list[dict]:
    """JSON lines; a last line cut off by a crash is dropped, any other bad line is an error."""
    if not Path(path).exists():
        return []
    lines = Path(path).read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise RunError(f"{path}:{number} is not valid JSON; the run's records are damaged") from None
    return rows


def truncate_rows(path: Path, keep) -> None:
    """Rewrite a JSON-lines file keeping only rows for which keep(row) is true (used on resume)."""
    rows = [row for row in read_rows(path) if keep(row)]
    atomic_write(path, "".join(json.dumps(row) + "\n" for row in rows).encode())
