"""Atomic files and JSON records (digitlab.store.files): a reader sees the old file or the whole new one."""

from __future__ import annotations

import json
import os

import pytest

from digitlab.errors import RunError
from digitlab.store import files


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- atomic_write ----------------------------------------------------------------------------------------


def test_atomic_write_leaves_the_bytes_and_no_temporary(tmp_path):
    files.atomic_write(tmp_path / "file", b"hello")
    assert (tmp_path / "file").read_bytes() == b"hello"
    assert os.listdir(tmp_path) == ["file"]


def test_atomic_write_replaces_an_existing_file(tmp_path):
    (tmp_path / "file").write_bytes(b"old contents, longer than the new")
    files.atomic_write(tmp_path / "file", b"new")
    assert (tmp_path / "file").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["file"]


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    files.atomic_write(tmp_path / "file", b"x")
    mode = (tmp_path / "file").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask()  # as open() would make it, not private like mkstemp's


def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "file").write_bytes(b"old")

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        files.atomic_write(tmp_path / "file", b"new")
    assert (tmp_path / "file").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file"]


def test_remove_temporaries_removes_only_leftover_writes(tmp_path):
    for name in (".file.0badf00d.tmp", ".step-000000003.safetensors.12345678.tmp", "file", "other.tmp"):
        (tmp_path / name).write_bytes(b"")
    removed = files.remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".file.0badf00d.tmp", ".step-000000003.safetensors.12345678.tmp"]
    assert sorted(os.listdir(tmp_path)) == ["file", "other.tmp"]


def test_remove_temporaries_of_a_missing_folder_removes_nothing(tmp_path):
    assert files.remove_temporaries(tmp_path / "none") == []


# --- JSON files ------------------------------------------------------------------------------------------


def test_json_round_trips(tmp_path):
    value = {"a": [1, 2.5, None], "b": {"c": "d"}}
    files.write_json(tmp_path / "x.json", value)
    assert files.read_json(tmp_path / "x.json") == value


def test_reading_missing_json_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="is missing"):
        files.read_json(tmp_path / "x.json")


def test_reading_damaged_json_is_a_run_error(tmp_path):
    (tmp_path / "x.json").write_text('{"a": ')
    with pytest.raises(RunError, match="is damaged") as caught:
        files.read_json(tmp_path / "x.json")
    assert str(tmp_path / "x.json") in str(caught.value)


# --- JSON lines ------------------------------------------------------------------------------------------


def test_appended_rows_read_back_in_order(tmp_path):
    path = tmp_path / "rows.jsonl"
    files.append_rows(path, [{"step": 1}, {"step": 2}])
    files.append_rows(path, [{"step": 3}])
    assert files.read_rows(path) == [{"step": 1}, {"step": 2}, {"step": 3}]


def test_appending_no_rows_writes_nothing(tmp_path):
    files.append_rows(tmp_path / "rows.jsonl", [])
    assert not (tmp_path / "rows.jsonl").exists()


def test_rows_of_a_missing_file_are_empty(tmp_path):
    assert files.read_rows(tmp_path / "rows.jsonl") == []


def test_read_rows_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + json.dumps({"step": 2}) + "\n" + '{"step": 3, "tra')
    assert files.read_rows(path) == [{"step": 1}, {"step": 2}]


def test_read_rows_refuses_a_bad_line_in_the_middle(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + "not json\n" + json.dumps({"step": 3}) + "\n")
    with pytest.raises(RunError, match="damaged") as caught:
        files.read_rows(path)
    assert f"{path}:2" in str(caught.value)


def test_truncate_rows_keeps_the_rows_asked_for(tmp_path):
    path = tmp_path / "rows.jsonl"
    files.append_rows(path, [{"step": step} for step in range(1, 6)])
    files.truncate_rows(path, lambda row: row["step"] <= 3)
    assert files.read_rows(path) == [{"step": 1}, {"step": 2}, {"step": 3}]
    assert os.listdir(tmp_path) == ["rows.jsonl"]


def test_truncate_rows_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + '{"st')
    files.truncate_rows(path, lambda row: True)
    assert path.read_text() == json.dumps({"step": 1}) + "\n"


def test_rows_appended_after_truncation_follow_on(tmp_path):
    path = tmp_path / "rows.jsonl"
    files.append_rows(path, [{"step": 1}, {"step": 2}])
    files.truncate_rows(path, lambda row: row["step"] <= 1)
    files.append_rows(path, [{"step": 2}])
    assert files.read_rows(path) == [{"step": 1}, {"step": 2}]
