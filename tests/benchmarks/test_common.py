"""benchmarks/common.py: what the benchmark scripts share."""

from __future__ import annotations

import json


def test_save_json_makes_the_folder(load_script, tmp_path):
    path = tmp_path / "new" / "folder" / "result.json"
    load_script("common").save_json(path, {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}


def test_results_wrap_the_fields_in_the_date_the_machine_and_the_command(load_script, monkeypatch):
    common = load_script("common")
    monkeypatch.setattr("sys.argv", ["benchmarks/x.py", "--rounds", "2"])
    machine = {"cpu": "a CPU", "physical_cores": 2, "logical_cpus": 4, "threads": 2, "torch": "2", "python": "3"}
    machine |= {"cpu_features": {"avx2": True}, "cpu_pressure": "some avg10=0.00"}
    machine["cpu_kernels"] = {"aten_capability": "AVX2", "onednn_max_isa": None}
    machine["cpu_kernels"] |= {"onednn_bf16_lstm": False, "bf16_native": False}
    result = common.results(machine, setup={"rounds": 2}, rows=[])
    assert list(result) == ["date", "machine", "command", "setup", "rows"]
    assert result["machine"] is machine and result["command"].endswith("python benchmarks/x.py --rounds 2")
    lines = common.header_lines(result)
    assert lines[0] == f"- date: {result['date']}" and lines[1].startswith("- machine: a CPU, 2 physical cores")
    assert len(lines) == 5  # the date and the four machine lines


def test_parser_shows_the_docstrings_first_paragraph_and_the_defaults(load_script):
    common = load_script("common")
    parser = common.parser("What it measures.\n\nThe second paragraph.")
    common.add_out(parser)
    text = " ".join(parser.format_help().split())  # argparse wraps lines
    assert "What it measures." in text and "second paragraph" not in text and "(default: " in text
    assert parser.parse_args([]).out == str(common.RESULTS)
