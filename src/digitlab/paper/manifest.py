"""The locked manifest of a reproduction, OUT/reproduce.json: the experiments, seeds, command lines and cells
that every command run into OUT has planned, so that the report can name the cells not finished.

Holds its file names (MANIFEST, MANIFEST_LOCK), the check that refuses an OUT made with other settings
(check_manifest), and the merge of one command's plan into it (update_manifest). Several shards may start at
once: the merge happens under the manifest's lock, so that each adds its share and none is lost.
"""

from __future__ import annotations

from pathlib import Path

from digitlab.errors import ConfigError
from digitlab.paper.grid import Cell
from digitlab.store import lock
from digitlab.store.files import read_json, write_json

MANIFEST = "reproduce.json"
MANIFEST_LOCK = ".reproduce.lock"  # held while a process updates the manifest (shards update it at once)


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
