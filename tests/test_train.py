"""digitlab.train.fit on tiny synthetic data: learning, determinism, the run directory, refusals."""
from __future__ import annotations

import json
import math
import os

import pytest
import torch

from digitlab import checkpoint, commands, data, predict, runs
from digitlab.config import ConfigError, TrainConfig
from digitlab.idx import DataError
from digitlab.runs import RunError
from digitlab.train import TrainingError, evaluate, fit


def quiet(*args, **kwargs):
    pass


def tiny(run_dir, **changes) -> TrainConfig:
    """A small, fast config: CPU, one thread, no progress output."""
    settings = dict(model="mlp", hidden_size=16, num_layers=1, batch_size=25, epochs=1, lr=0.01,
                    run_dir=str(run_dir), threads=1, device="cpu", progress="none")
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture
def dataset(data_dir):
    return data.load(data_dir, log=quiet)


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(row: dict) -> dict:
    """A row without what the machine's speed and load decide (seconds, CPU pressure)."""
    return {k: v for k, v in row.items() if not k.endswith("seconds") and not k.startswith("cpu_pressure")}


def weights(run_dir):
    tensors, _ = runs.read_weights(run_dir)
    return tensors


# --- learning ----------------------------------------------------------------------------------------

def test_short_run_overfits_a_few_batches(dataset, tmp_path):
    config = tiny(tmp_path / "run", model="lstm", hidden_size=32, num_layers=1, train_limit=40, batch_size=10,
                  epochs=20, lr=0.01, optimizer="adam")
    run_dir = fit(config, dataset=dataset, log=quiet)
    metrics = read_rows(run_dir / runs.METRICS)
    assert len(metrics) == 20
    first, last = metrics[0]["train/loss"], metrics[-1]["train/loss"]
    assert first > 1.5  # about ln(10) before learning anything
    assert last < first / 10
    model, _ = predict.load_model(run_dir)
    seen = evaluate(model, data.normalize(dataset.train_images[:40]), dataset.train_labels[:40], 100)
    assert seen["accuracy"] >= 0.95


def test_paper_defaults_learn_synthetic_digits(data_dir, tmp_path):
    # The paper's LSTM (2x128), Adam at lr 0.001, via data_dir rather than a dataset object.
    config = TrainConfig(data_dir=str(data_dir), run_dir=str(tmp_path / "run"), batch_size=25, epochs=4,
                         threads=1, device="cpu", progress="none")
    run_dir = fit(config, log=quiet)
    result = json.loads((run_dir / runs.RESULT).read_text())
    assert result["final"]["test/acc"] > 0.9
    env = json.loads((run_dir / runs.ENV).read_text())
    assert env["data_source"] == f"folder {data_dir}"
    assert env["data_verified"] is False


# --- determinism -------------------------------------------------------------------------------------

def test_same_seed_gives_identical_runs(dataset, tmp_path):
    run_a = fit(tiny(tmp_path / "a", epochs=2, seed=3, val_size=30, dropout=0.2), dataset=dataset, log=quiet)
    run_b = fit(tiny(tmp_path / "b", epochs=2, seed=3, val_size=30, dropout=0.2), dataset=dataset, log=quiet)
    metrics_a, metrics_b = read_rows(run_a / runs.METRICS), read_rows(run_b / runs.METRICS)
    assert [without_timing(r) for r in metrics_a] == [without_timing(r) for r in metrics_b]
    assert read_rows(run_a / runs.STEPS) == read_rows(run_b / runs.STEPS)
    tensors_a, tensors_b = weights(run_a), weights(run_b)
    assert tensors_a.keys() == tensors_b.keys()
    for name in tensors_a:
        assert torch.equal(tensors_a[name], tensors_b[name]), name


def test_different_seeds_give_different_runs(dataset, tmp_path):
    run_a = fit(tiny(tmp_path / "a", seed=1), dataset=dataset, log=quiet)
    run_b = fit(tiny(tmp_path / "b", seed=2), dataset=dataset, log=quiet)
    losses_a = [r["train/loss"] for r in read_rows(run_a / runs.STEPS)]
    losses_b = [r["train/loss"] for r in read_rows(run_b / runs.STEPS)]
    assert losses_a != losses_b
    tensors_a, tensors_b = weights(run_a), weights(run_b)
    assert any(not torch.equal(tensors_a[name], tensors_b[name]) for name in tensors_a)


def test_resumed_run_matches_uninterrupted_run(dataset, tmp_path):
    straight = fit(tiny(tmp_path / "straight", epochs=2, seed=5), dataset=dataset, log=quiet)
    config = tiny(tmp_path / "resumed", epochs=1, seed=5)
    fit(config, dataset=dataset, log=quiet)
    resumed = fit(config.replace(epochs=2), dataset=dataset, resume=True, log=quiet)
    assert resumed == straight.parent / "resumed"
    assert [without_timing(r) for r in read_rows(resumed / runs.METRICS)] == \
        [without_timing(r) for r in read_rows(straight / runs.METRICS)]
    assert read_rows(resumed / runs.STEPS) == read_rows(straight / runs.STEPS)
    a, b = weights(straight), weights(resumed)
    for name in a:
        assert torch.equal(a[name], b[name]), name


# --- the run directory -------------------------------------------------------------------------------

def test_run_directory_contents(dataset, tmp_path):
    run_dir = tmp_path / "runs" / "nested" / "run"  # missing parents are created
    config = tiny(run_dir, model="lstm", hidden_size=8, epochs=2, train_limit=100, test_limit=60, batch_size=30,
                  keep_checkpoints=1)
    lines = []
    assert fit(config, dataset=dataset, log=lines.append) == run_dir
    names = {p.name for p in run_dir.iterdir()}
    assert {runs.CONFIG, runs.ENV, runs.METRICS, runs.STEPS, runs.WEIGHTS, runs.RESULT, runs.CHECKPOINTS} <= names
    assert not [n for n in names if n.endswith(".tmp")]

    saved = json.loads((run_dir / runs.CONFIG).read_text())
    resolved = config.replace(micro_batch=100)  # config.json records the micro-batch the CPU run used
    assert saved == resolved.to_dict()
    assert TrainConfig.from_dict(saved) == resolved

    env = json.loads((run_dir / runs.ENV).read_text())
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and env["world_size"] == 1
    assert env["threads"] == 1

    steps = read_rows(run_dir / runs.STEPS)  # 100 examples in batches of 30: 4 steps per epoch, the last partial
    assert [(r["epoch"], r["step"], r["global_step"]) for r in steps] == \
        [(e, s, (e - 1) * 4 + s) for e in (1, 2) for s in (1, 2, 3, 4)]
    assert all(math.isfinite(r["train/loss"]) for r in steps)

    metrics = read_rows(run_dir / runs.METRICS)
    assert [r["epoch"] for r in metrics] == [1, 2]
    assert [r["global_step"] for r in metrics] == [4, 8]
    for row, epoch in zip(metrics, (1, 2)):
        epoch_losses = [r["train/loss"] for r in steps if r["epoch"] == epoch]
        assert row["train/loss"] == pytest.approx(sum(epoch_losses) / 4)
        assert 0.0 <= row["test/acc"] <= 1.0 and row["test/loss"] > 0
        assert "val/acc" not in row

    result = json.loads((run_dir / runs.RESULT).read_text())
    assert result["final"] == metrics[-1]
    assert result["epochs"] == 2

    tensors, info = runs.read_weights(run_dir)
    assert info == {"model": "lstm", "image_shape": [28, 28], "num_classes": 10}
    model, _ = predict.load_model(run_dir)
    assert tensors.keys() == model.state_dict().keys()
    # The saved model reproduces the last epoch's test accuracy (on the first test_limit examples).
    again = evaluate(model, data.normalize(dataset.test_images[:60]), dataset.test_labels[:60], 1000)
    assert again["accuracy"] == pytest.approx(metrics[-1]["test/acc"])
    assert again["loss"] == pytest.approx(metrics[-1]["test/loss"], rel=1e-5)

    assert [p.name for p in checkpoint.list_checkpoints(run_dir / runs.CHECKPOINTS)] == ["step-000000008.safetensors"]
    assert any(str(run_dir) in line for line in lines)


def test_val_size_adds_validation_metrics(dataset, tmp_path):
    run_dir = fit(tiny(tmp_path / "run", val_size=50, batch_size=50), dataset=dataset, log=quiet)
    (row,) = read_rows(run_dir / runs.METRICS)
    assert 0.0 <= row["val/acc"] <= 1.0 and row["val/loss"] > 0
    assert len(read_rows(run_dir / runs.STEPS)) == 5  # 300 - 50 = 250 training examples in batches of 50


def test_prepare_limits_and_validation_split(dataset):
    prepared = data.prepare(dataset, val_size=40, train_limit=200, test_limit=30, seed=7)
    assert len(prepared.train_images) == 160 and len(prepared.val_images) == 40
    assert len(prepared.test_images) == 30
    # The split partitions the first 200 training examples, and depends on the seed alone.
    rows = lambda images: {bytes(image.flatten().tolist()) for image in images}  # noqa: E731
    assert rows(prepared.train_images) | rows(prepared.val_images) == rows(dataset.train_images[:200])
    assert not rows(prepared.train_images) & rows(prepared.val_images)
    again = data.prepare(dataset, val_size=40, train_limit=200, test_limit=30, seed=7)
    assert torch.equal(again.val_labels, prepared.val_labels) and torch.equal(again.val_images, prepared.val_images)
    other = data.prepare(dataset, val_size=40, train_limit=200, test_limit=30, seed=8)
    assert not torch.equal(other.val_images, prepared.val_images)
    assert data.prepare(dataset).val_images is None


def test_epoch_order_is_a_seeded_permutation():
    order = data.epoch_order(50, seed=1, epoch=0)
    assert sorted(order.tolist()) == list(range(50))
    assert torch.equal(order, data.epoch_order(50, seed=1, epoch=0))
    assert not torch.equal(order, data.epoch_order(50, seed=1, epoch=1))
    assert not torch.equal(order, data.epoch_order(50, seed=2, epoch=0))
    assert data.num_batches(100, 30) == 4 and data.num_batches(90, 30) == 3


def test_divergence_stops_with_a_training_error(dataset, tmp_path):
    config = tiny(tmp_path / "run", optimizer="sgd", lr=1e30, batch_size=50)
    with pytest.raises(TrainingError, match="diverged") as caught:
        fit(config, dataset=dataset, log=quiet)
    assert "--lr" in str(caught.value)
    assert checkpoint.list_checkpoints(tmp_path / "run" / runs.CHECKPOINTS)  # the last good weights are kept
    assert not (tmp_path / "run" / runs.RESULT).exists()


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_gpu_is_refused(dataset, tmp_path):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        fit(tiny(tmp_path / "run", device="cuda"), dataset=dataset, log=quiet)
    assert not (tmp_path / "run").exists()


def test_missing_data_dir_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(DataError, match="lacks"):
        fit(tiny(tmp_path / "run", data_dir=str(tmp_path / "nowhere")), log=quiet)
    assert not (tmp_path / "run").exists()


def test_existing_run_is_not_overwritten(dataset, tmp_path):
    run_dir = fit(tiny(tmp_path / "run"), dataset=dataset, log=quiet)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(RunError, match="already holds a finished run"):
        fit(tiny(run_dir, seed=9), dataset=dataset, log=quiet)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_unfinished_run_is_not_overwritten(dataset, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / runs.CONFIG).write_text(json.dumps(tiny(run_dir).to_dict()))
    with pytest.raises(RunError, match="--resume"):
        fit(tiny(run_dir), dataset=dataset, log=quiet)
    assert [p.name for p in run_dir.iterdir()] == [runs.CONFIG]


def test_empty_existing_folder_is_a_fine_run_dir(dataset, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    fit(tiny(run_dir), dataset=dataset, log=quiet)
    assert runs.is_finished(run_dir)


def test_run_dir_under_a_regular_file_is_refused(dataset, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match="cannot write the run directory"):
        fit(tiny(blocker / "run"), dataset=dataset, log=quiet)
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_parent_is_refused(dataset, tmp_path):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(RunError, match="cannot write the run directory"):
            fit(tiny(parent / "run"), dataset=dataset, log=quiet)
    finally:
        parent.chmod(0o755)


def test_resume_refuses_changed_settings(dataset, tmp_path):
    run_dir = fit(tiny(tmp_path / "run"), dataset=dataset, log=quiet)
    with pytest.raises(ConfigError, match="lr"):
        commands.train({"lr": 0.5, "epochs": 2}, resume=str(run_dir))


def test_resume_of_a_folder_without_a_run(tmp_path):
    with pytest.raises(RunError, match="missing"):
        commands.train({}, resume=str(tmp_path))
