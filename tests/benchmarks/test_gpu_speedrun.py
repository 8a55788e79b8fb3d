"""benchmarks/gpu_speedrun.py: its CPU rehearsal runs every stage and writes a report labelled a rehearsal; the
Trainer's reset in place gives each seed the run a fresh trainer gives (what one CUDA graph for every seed needs),
its lr is the device tensor the schedule writes; one_cycle's shape; the selection's choice; the report's verdicts."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import write_dataset


@pytest.fixture
def speedrun(load_script):
    return load_script("gpu_speedrun")


@pytest.fixture(scope="module")
def data_600(tmp_path_factory):
    """Synthetic digits: 600 training examples (one LSTM batch of 500 fits), 40 test."""
    return write_dataset(tmp_path_factory.mktemp("speedrun") / "data", n_train=600, n_test=40)


def test_cpu_rehearsal_runs_every_stage_and_says_it_is_one(speedrun, data_600, tmp_path, capsys):
    stem = tmp_path / "out" / "rehearsal"
    code = speedrun.main(["--device", "cpu", "--quick", "--data-dir", str(data_600), "--stem", str(stem)])
    assert code == 0
    result = json.loads(stem.with_suffix(".json").read_text())
    assert result["machine"]["device"].startswith("cpu") and result["machine"]["cpu"]
    assert result["settings"]["seeds"] == 1 and result["settings"]["speednet_parameters"] == 220_330
    select = result["select"]
    assert [row["steps"] for row in select["rows"]] == [1]  # 600 - 200 held out, batch 256: one full batch
    assert select["chosen"] == {"batch_size": 256, "epochs": 1.0, "lr": 0.006} and select["rows"][0]["chosen"]
    record = result["record"]
    assert record["settings"] == select["chosen"] | {"given": False} and record["steps"] == 2
    (run,) = record["runs"]
    assert run["seed"] == 1000 and run["seconds"] > 0 and 0 <= run["test_acc"] <= 1
    assert run["reached"] == (run["test_acc"] >= 0.99) and record["reached"] == int(run["reached"])
    assert record["ran_as"] == "eager (CUDA graphs need CUDA)"  # a graph only on CUDA, and the report says so
    assert [row["lever"] for row in result["levers"]] == list(speedrun.LEVERS)
    assert [(row["precision"], row["launch"]) for row in result["lstm"]] == [
        ("bf16", "graph"), ("bf16", "eager"), ("fp32", "graph"), ("fp32", "eager"),
    ]  # fmt: skip
    assert all(len(row["epoch_seconds"]) == 1 and row["seconds"] > 0 for row in result["lstm"])

    text = stem.with_suffix(".md").read_text()
    assert text.startswith("# CPU REHEARSAL") and "did not run on a GPU" in text
    assert text.strip() in capsys.readouterr().out  # printed too
    summary = text.split("## Summary")[1].split("##")[0]
    assert summary.count("not judged: a CPU rehearsal") == 3  # the record and the LSTM in bf16 and fp32
    for heading in ("## Selection on validation", "## Record", "## Levers", "## Paper LSTM"):
        assert heading in text


def test_only_the_stages_asked_for_run(speedrun, data_600, tmp_path):
    stem = tmp_path / "record-only"
    argv = ["--device", "cpu", "--quick", "--data-dir", str(data_600), "--stem", str(stem), "--stages", "record"]
    argv += ["--batch-size", "100", "--epochs", "0.5", "--seeds", "2"]
    assert speedrun.main(argv) == 0
    result = json.loads(stem.with_suffix(".json").read_text())
    assert "select" not in result and "levers" not in result and "lstm" not in result
    assert result["record"]["settings"] == {"batch_size": 100, "epochs": 0.5, "lr": 0.006, "given": True}
    assert result["record"]["steps"] == 3 and [run["seed"] for run in result["record"]["runs"]] == [1000, 1001]
    assert "given on the command line" in stem.with_suffix(".md").read_text()


def test_a_batch_larger_than_the_data_is_refused(speedrun, data_600, tmp_path):
    argv = ["--device", "cpu", "--quick", "--data-dir", str(data_600), "--stem", str(tmp_path / "x")]
    with pytest.raises(SystemExit, match="batch 1000 is larger than the training set"):
        speedrun.main([*argv, "--stages", "record", "--batch-size", "1000"])


def test_quick_sets_defaults_the_command_line_overrides(speedrun):
    quick = speedrun.parse_args(["--device", "cpu", "--quick", "--seeds", "4"])
    assert quick.seeds == 4 and quick.select_seeds == 1 and quick.batch_sizes == [256] and quick.val_size == 200
    full = speedrun.parse_args(["--device", "cpu"])
    assert full.seeds == 10 and full.batch_sizes == [256, 512] and full.stages == list(speedrun.STAGES)
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            speedrun.parse_args([])  # --device cuda by default: refused where torch sees no GPU


def test_choose_takes_the_fastest_that_reached_the_target_else_the_most_accurate(speedrun):
    slow = {"seconds": 2.0, "min_val_acc": 0.992, "mean_val_acc": 0.993}
    fast = {"seconds": 1.0, "min_val_acc": 0.990, "mean_val_acc": 0.991}
    short = {"seconds": 0.5, "min_val_acc": 0.985, "mean_val_acc": 0.995}  # one seed fell short
    assert speedrun.choose([slow, fast, short], 0.99) == (fast, True)
    assert speedrun.choose([slow, fast, short], 0.999) == (short, False)


def trainer(speedrun, data, lr_steps=4, warmup=1):
    images, labels = data
    return speedrun.Trainer(speedrun.SPEEDNET, images, labels, 20, lr_steps, "fp32", "eager", warmup=warmup)


@pytest.fixture
def cnn_data(speedrun):
    torch.manual_seed(0)
    return speedrun.on_device(torch.randint(0, 256, (60, 28, 28), dtype=torch.uint8), torch.arange(60) % 10,
                              torch.device("cpu"), channels=True)  # fmt: skip


def test_reset_in_place_trains_as_a_fresh_trainer_does(speedrun, cnn_data):
    lrs = speedrun.one_cycle(4, 0.01)
    used = trainer(speedrun, cnn_data, warmup=6)  # more warm-up steps than rows of order
    used.reset(9, lrs)
    used.train(4)
    used.reset(5, lrs)  # after warm-up steps and another seed's training: seed 5's start
    used.train(3)
    used.train(1)  # on from step 3: the fourth batch of the same order, with the fourth lr
    fresh = trainer(speedrun, cnn_data, warmup=1)
    fresh.reset(5, lrs)
    fresh.train(4)
    for (name, a), b in zip(used.model.state_dict().items(), fresh.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_lr_is_the_device_tensor_the_schedule_writes(speedrun, cnn_data):
    still = trainer(speedrun, cnn_data)
    still.reset(1, torch.zeros(4))
    before = [p.detach().clone() for p in still.model.parameters()]
    still.train(3)
    assert all(torch.equal(a, b) for a, b in zip(before, still.model.parameters()))
    still.reset(1, torch.full((4,), 0.01))
    still.train(1)
    assert not all(torch.equal(a, b) for a, b in zip(before, still.model.parameters()))


def test_one_cycle_rises_to_the_peak_then_falls_to_zero(speedrun):
    lrs = speedrun.one_cycle(100, 0.01)
    assert len(lrs) == 100 and lrs.argmax() in (24, 25) and lrs.max() <= 0.01
    assert lrs[0] == pytest.approx(0.001, rel=0.2) and 0 < lrs[-1] < 0.0002
    assert (lrs[:24].diff() > 0).all() and (lrs[26:].diff() < 0).all()


def test_report_judges_the_targets_on_a_gpu_run(load_script):
    report = load_script("speedrun_report")
    runs = [{"test_acc": 0.992, "reached": True}, {"test_acc": 0.989, "reached": False}]
    result = {"settings": {"target": 0.99, "launch": "graph"}, "lstm": [
        {"precision": "bf16", "launch": "graph", "ran_as": "graph", "seconds": 0.12},
        {"precision": "bf16", "launch": "eager", "ran_as": "eager", "seconds": 0.8},
        {"precision": "fp32", "launch": "graph", "ran_as": "graph", "seconds": 0.2},
    ], "record": {"mean_seconds": 0.2, "reached": 1, "runs": runs, "mean_test_acc": 0.9905}}  # fmt: skip
    lines = report.summary(result, rehearsal=False)
    assert len(lines) == 3  # the record, and the LSTM as --launch ran it (not the eager rows beside)
    assert "1 of 2 seeds" in lines[0] and lines[0].endswith("not met")  # fast enough, but a seed fell short
    assert lines[1].endswith(": met") and lines[2].endswith("not met")
    result["record"] |= {"reached": 2}
    assert report.summary(result, rehearsal=False)[0].endswith(": met")
