"""digitlab.training.fit.fit on tiny synthetic data: learning, determinism, the run directory, refusals."""

from __future__ import annotations

import json
import math

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.data.dataset import load, normalize
from digitlab.errors import ConfigError, DataError
from digitlab.inference.load import load_model
from digitlab.store import checkpoint, rundir
from digitlab.training.evaluate import evaluate
from digitlab.training.fit import fit


def quiet(*args, **kwargs):
    pass


def tiny(run_dir, **changes) -> TrainConfig:
    """A small, fast config: CPU, one thread, no progress output."""
    settings = dict(
        model="mlp", hidden_size=16, num_layers=1, batch_size=25, epochs=1, lr=0.01, run_dir=str(run_dir), threads=1,
        device="cpu", progress="none",
    )  # fmt: skip
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def dataset(session_data_dir):
    """The session's synthetic data, loaded once (fit never modifies a dataset)."""
    return load(session_data_dir, log=quiet)


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(row: dict) -> dict:
    """A row without what the machine's speed and load decide (seconds, CPU pressure)."""
    return {k: v for k, v in row.items() if not k.endswith("seconds") and not k.startswith("cpu_pressure")}


def weights(run_dir):
    tensors, _ = rundir.read_weights(run_dir)
    return tensors


# --- learning ----------------------------------------------------------------------------------------


def test_short_run_overfits_a_few_batches(dataset, tmp_path):
    config = tiny(
        tmp_path / "run", model="lstm", hidden_size=32, num_layers=1, train_limit=40, batch_size=10, epochs=20,
        lr=0.01, optimizer="adam",
    )  # fmt: skip
    run_dir = fit(config, dataset=dataset, log=quiet)
    metrics = read_rows(run_dir / rundir.METRICS)
    assert len(metrics) == 20
    first, last = metrics[0]["train/loss"], metrics[-1]["train/loss"]
    assert first > 1.5  # about ln(10) before learning anything
    assert last < first / 10
    model, _ = load_model(run_dir)
    seen = evaluate(model, normalize(dataset.train_images[:40]), dataset.train_labels[:40], 100)
    assert seen["accuracy"] >= 0.95


def test_paper_defaults_learn_synthetic_digits(data_dir, tmp_path):
    # The paper's LSTM (2x128), Adam at lr 0.001, via data_dir rather than a dataset object.
    config = TrainConfig(
        data_dir=str(data_dir), run_dir=str(tmp_path / "run"), batch_size=25, epochs=4, threads=1, device="cpu",
        progress="none",
    )  # fmt: skip
    run_dir = fit(config, log=quiet)
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert result["final"]["test/acc"] > 0.9
    env = json.loads((run_dir / rundir.ENV).read_text())
    assert env["data_source"] == f"folder {data_dir}"
    assert env["data_verified"] is False


# --- determinism -------------------------------------------------------------------------------------


def test_same_seed_gives_identical_runs(dataset, tmp_path):
    run_a = fit(tiny(tmp_path / "a", epochs=2, seed=3, val_size=30, dropout=0.2), dataset=dataset, log=quiet)
    run_b = fit(tiny(tmp_path / "b", epochs=2, seed=3, val_size=30, dropout=0.2), dataset=dataset, log=quiet)
    metrics_a, metrics_b = read_rows(run_a / rundir.METRICS), read_rows(run_b / rundir.METRICS)
    assert [without_timing(r) for r in metrics_a] == [without_timing(r) for r in metrics_b]
    assert read_rows(run_a / rundir.STEPS) == read_rows(run_b / rundir.STEPS)
    tensors_a, tensors_b = weights(run_a), weights(run_b)
    assert tensors_a.keys() == tensors_b.keys()
    for name in tensors_a:
        assert torch.equal(tensors_a[name], tensors_b[name]), name


def test_different_seeds_give_different_runs(dataset, tmp_path):
    run_a = fit(tiny(tmp_path / "a", seed=1), dataset=dataset, log=quiet)
    run_b = fit(tiny(tmp_path / "b", seed=2), dataset=dataset, log=quiet)
    losses_a = [r["train/loss"] for r in read_rows(run_a / rundir.STEPS)]
    losses_b = [r["train/loss"] for r in read_rows(run_b / rundir.STEPS)]
    assert losses_a != losses_b
    tensors_a, tensors_b = weights(run_a), weights(run_b)
    assert any(not torch.equal(tensors_a[name], tensors_b[name]) for name in tensors_a)


def test_resumed_run_matches_uninterrupted_run(dataset, tmp_path):
    straight = fit(tiny(tmp_path / "straight", epochs=2, seed=5), dataset=dataset, log=quiet)
    config = tiny(tmp_path / "resumed", epochs=1, seed=5)
    fit(config, dataset=dataset, log=quiet)
    resumed = fit(config.replace(epochs=2), dataset=dataset, resuming=True, log=quiet)
    assert resumed == straight.parent / "resumed"
    assert [without_timing(r) for r in read_rows(resumed / rundir.METRICS)] == [
        without_timing(r) for r in read_rows(straight / rundir.METRICS)
    ]
    assert read_rows(resumed / rundir.STEPS) == read_rows(straight / rundir.STEPS)
    a, b = weights(straight), weights(resumed)
    for name in a:
        assert torch.equal(a[name], b[name]), name


# --- the run directory: one finished run, read by each test ------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory, dataset):
    """A finished 2-epoch LSTM run (its config, and the lines it logged); never modify it."""
    run_dir = tmp_path_factory.mktemp("finished") / "runs" / "nested" / "run"  # missing parents are created
    config = tiny(
        run_dir, model="lstm", hidden_size=8, epochs=2, train_limit=100, test_limit=60, batch_size=30,
        keep_checkpoints=1,
    )  # fmt: skip
    lines = []
    assert fit(config, dataset=dataset, log=lines.append) == run_dir
    return run_dir, config, lines


def test_run_directory_holds_every_record_and_no_temporary_file(finished):
    run_dir, _, _ = finished
    names = {p.name for p in run_dir.iterdir()}
    assert {
        rundir.CONFIG, rundir.ENV, rundir.METRICS, rundir.STEPS, rundir.WEIGHTS, rundir.RESULT, rundir.CHECKPOINTS,
    } <= names  # fmt: skip
    assert not [n for n in names if n.endswith(".tmp")]


def test_config_json_records_the_resolved_config(finished):
    run_dir, config, _ = finished
    saved = json.loads((run_dir / rundir.CONFIG).read_text())
    # config.json records the micro-batch the CPU run used, and the dataset it found
    resolved = config.replace(micro_batch=100, dataset="custom")
    assert saved == resolved.to_dict()
    assert TrainConfig.from_dict(saved) == resolved


def test_env_json_records_device_torch_and_threads(finished):
    run_dir, _, _ = finished
    env = json.loads((run_dir / rundir.ENV).read_text())
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and env["world_size"] == 1
    assert env["threads"] == 1


def test_steps_jsonl_has_one_row_per_step(finished):
    run_dir, _, _ = finished
    steps = read_rows(run_dir / rundir.STEPS)  # 100 examples in batches of 30: 4 steps per epoch, the last partial
    assert [(r["epoch"], r["step"], r["global_step"]) for r in steps] == [
        (e, s, (e - 1) * 4 + s) for e in (1, 2) for s in (1, 2, 3, 4)
    ]
    assert all(math.isfinite(r["train/loss"]) for r in steps)


def test_metrics_jsonl_has_one_row_per_epoch(finished):
    run_dir, _, _ = finished
    steps = read_rows(run_dir / rundir.STEPS)
    metrics = read_rows(run_dir / rundir.METRICS)
    assert [r["epoch"] for r in metrics] == [1, 2]
    assert [r["global_step"] for r in metrics] == [4, 8]
    for row, epoch in zip(metrics, (1, 2)):
        epoch_losses = [r["train/loss"] for r in steps if r["epoch"] == epoch]
        assert row["train/loss"] == pytest.approx(sum(epoch_losses) / 4)
        assert 0.0 <= row["test/acc"] <= 1.0 and row["test/loss"] > 0
        assert "val/acc" not in row


def test_result_json_holds_the_last_epoch(finished):
    run_dir, _, _ = finished
    metrics = read_rows(run_dir / rundir.METRICS)
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert result["final"] == metrics[-1]
    assert result["epochs"] == 2


def test_saved_model_reproduces_the_last_test_accuracy(finished, dataset):
    run_dir, _, _ = finished
    metrics = read_rows(run_dir / rundir.METRICS)
    tensors, info = rundir.read_weights(run_dir)
    assert info == {
        "model": "lstm",
        "image_shape": [28, 28],
        "num_classes": 10,
        "dataset": "custom",
        "class_names": None,
    }
    model, _ = load_model(run_dir)
    assert tensors.keys() == model.state_dict().keys()
    # On the first test_limit examples, as the run evaluated.
    again = evaluate(model, normalize(dataset.test_images[:60]), dataset.test_labels[:60], 1000)
    assert again["accuracy"] == pytest.approx(metrics[-1]["test/acc"])
    assert again["loss"] == pytest.approx(metrics[-1]["test/loss"], rel=1e-5)


def test_only_the_newest_checkpoints_are_kept(finished):
    run_dir, _, _ = finished
    assert [p.name for p in checkpoint.list_checkpoints(run_dir / rundir.CHECKPOINTS)] == ["step-000000008.safetensors"]


def test_log_names_the_run_directory(finished):
    run_dir, _, lines = finished
    assert any(str(run_dir) in line for line in lines)


def test_setup_is_timed_apart_in_the_first_epoch_row(finished):
    run_dir, _, lines = finished
    first, second = read_rows(run_dir / rundir.METRICS)
    assert first["setup/seconds"] > 0 and "setup/seconds" not in second
    assert any(line.startswith("set-up (one forward/backward pass") for line in lines)


def test_a_resumed_process_times_its_own_setup(dataset, tmp_path):
    config = tiny(tmp_path / "run", epochs=1)
    fit(config, dataset=dataset, log=quiet)
    fit(config.replace(epochs=2), dataset=dataset, resuming=True, log=quiet)
    assert ["setup/seconds" in row for row in read_rows(tmp_path / "run" / rundir.METRICS)] == [True, True]


def test_env_json_records_the_dataset_and_the_precision_asked_for(finished):
    run_dir, _, _ = finished
    env = json.loads((run_dir / rundir.ENV).read_text())
    assert env["dataset"] == "custom" and env["data_verified"] is False
    assert env["precision_requested"] == "fp32"
    assert set(env["cpu_features"]) >= {"avx512f", "avx512_bf16", "amx_tile"}


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_records_the_precision_that_ran(dataset, tmp_path, monkeypatch, native):
    from digitlab.training import device

    monkeypatch.setattr(device, "native_bf16", lambda where: native)
    run_dir = fit(tiny(tmp_path / "run", precision="auto"), dataset=dataset, log=quiet)
    assert rundir.load_config(run_dir).precision == ("bf16" if native else "fp32")
    assert json.loads((run_dir / rundir.ENV).read_text())["precision_requested"] == "auto"


def test_val_size_adds_validation_metrics(dataset, tmp_path):
    run_dir = fit(tiny(tmp_path / "run", val_size=50, batch_size=50), dataset=dataset, log=quiet)
    (row,) = read_rows(run_dir / rundir.METRICS)
    assert 0.0 <= row["val/acc"] <= 1.0 and row["val/loss"] > 0
    assert len(read_rows(run_dir / rundir.STEPS)) == 5  # 300 - 50 = 250 training examples in batches of 50


# --- refusals: the right error, before anything is written -------------------------------------------

BAD_CONFIGS = {
    "unknown model": (dict(model="transformer"), ConfigError, "unknown model"),
    "unknown optimizer": (dict(optimizer="lion"), ConfigError, "unknown optimizer"),
    "zero batch size": (dict(batch_size=0), ConfigError, "--batch-size must be positive"),
    "negative batch size": (dict(batch_size=-5), ConfigError, "--batch-size must be positive"),
    "zero epochs": (dict(epochs=0), ConfigError, "--epochs must be positive"),
    "zero hidden size": (dict(hidden_size=0), ConfigError, "--hidden-size must be positive"),
    "zero layers": (dict(num_layers=0), ConfigError, "--num-layers must be positive"),
    "zero eval batch": (dict(eval_batch_size=0), ConfigError, "--eval-batch-size must be positive"),
    "zero checkpoints kept": (dict(keep_checkpoints=0), ConfigError, "--keep-checkpoints must be positive"),
    "negative val size": (dict(val_size=-1), ConfigError, "--val-size must be 0 or more"),
    "negative train limit": (dict(train_limit=-1), ConfigError, "--train-limit must be 0 or more"),
    "negative threads": (dict(threads=-2), ConfigError, "--threads must be 0 or more"),
    "zero lr": (dict(lr=0.0), ConfigError, "--lr must be positive"),
    "nan lr": (dict(lr=float("nan")), ConfigError, "--lr must be positive"),
    "dropout one": (dict(dropout=1.0), ConfigError, "--dropout"),
    "unknown precision": (dict(precision="fp64"), ConfigError, "unknown precision"),
    "unknown head": (dict(blstm_head="middle"), ConfigError, "unknown BLSTM head"),
    "unknown progress": (dict(progress="dots"), ConfigError, "unknown progress mode"),
    "unknown device": (dict(device="tpu"), ConfigError, "unsupported device"),
    "other device type": (dict(device="meta"), ConfigError, "unsupported device"),
    "cnn with 3 layers": (dict(model="cnn", num_layers=3), ConfigError, "--num-layers"),
    "fp16 on cpu": (dict(precision="fp16"), ConfigError, "fp16 needs a CUDA GPU"),
    "batch larger than data": (dict(batch_size=301), ConfigError, "larger than the training set"),
    "batch larger than limit": (dict(batch_size=60, train_limit=50), ConfigError, "larger than the training set"),
    "batch larger than after val": (dict(batch_size=60, val_size=250), ConfigError, "larger than the training set"),
    "val takes everything": (dict(val_size=300), DataError, "--val-size 300 leaves no training data"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_refused_before_anything_is_written(dataset, tmp_path, case):
    changes, error, words = BAD_CONFIGS[case]
    run_dir = tmp_path / "run"
    with pytest.raises(error, match=words):
        fit(tiny(run_dir, **changes), dataset=dataset, log=quiet)
    assert not run_dir.exists()


def test_unknown_head_of_the_blstm_is_refused_before_anything_is_written(dataset, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="unknown BLSTM head"):
        fit(tiny(run_dir, model="blstm", blstm_head="middle"), dataset=dataset, log=quiet)
    assert not run_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_gpu_is_refused(dataset, tmp_path):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        fit(tiny(tmp_path / "run", device="cuda"), dataset=dataset, log=quiet)
    assert not (tmp_path / "run").exists()


def test_missing_data_dir_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(DataError, match="lacks"):
        fit(tiny(tmp_path / "run", data_dir=str(tmp_path / "nowhere")), log=quiet)
    assert not (tmp_path / "run").exists()
