"""`digitlab reproduce` through digitlab.cli.main([...]): the command line recorded in OUT/reproduce.json (and
so in the report's "Made by") is the argv main was given. The grid itself is tested in tests/paper/."""

from __future__ import annotations

import digitlab.paper.cells
from digitlab.paper.manifest import MANIFEST
from digitlab.store.files import read_json
from helpers import run_cli


def test_the_manifest_records_the_argv_main_was_given(capsys, monkeypatch, session_data_dir, tmp_path):
    monkeypatch.setattr("sys.argv", ["/usr/bin/pytest", "-q", "tests/commands"])  # not what main is given
    # No cell trains: the manifest is written before they run, and a shard of two builds no report.
    monkeypatch.setattr(digitlab.paper.cells, "run_cells", lambda *args, **kwargs: [])
    out = tmp_path / "reproduction"
    argv = ["reproduce", "table2", "--data-dir", str(session_data_dir), "--out", str(out), "--shard", "1/2"]
    code, _, err = run_cli(capsys, argv)
    assert (code, err) == (0, "")
    assert read_json(out / MANIFEST)["commands"] == [" ".join(["digitlab", *argv])]
