"""benchmarks/common.py: what the benchmark scripts share."""

from __future__ import annotations

import json


def test_save_json_makes_the_folder(load_script, tmp_path):
    path = tmp_path / "new" / "folder" / "result.json"
    load_script("common").save_json(path, {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
