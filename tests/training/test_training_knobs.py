"""The training knobs (schedule, weight decay, label smoothing, clipping, weight average, augmentation):
recorded, resumable bit-identically mid-schedule and mid-augmentation, and never applied to evaluation."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError
from digitlab.store import checkpoint, rundir
from digitlab.store.files import read_rows
from digitlab.training import ema
from digitlab.training.fit import fit


def quiet(*args, **kwargs):
    pass


KNOBS = dict(
    schedule="onecycle", warmup=0.3, weight_decay=0.01, label_smoothing=0.1, grad_clip=0.5, ema_decay=0.9,
    rotate=10.0, scale=0.1, shift=2.0, elastic=1.0,
)  # fmt: skip


def config_for(data_dir, run_dir, **changes) -> TrainConfig:
    settings = dict(
        model="vgg", channels=4, hidden_size=16, optimizer="adamw", lr=0.01, batch_size=50, epochs=2,
        data_dir=str(data_dir), run_dir=str(run_dir), threads=1, progress="none", device="cpu",
        checkpoint_every=1, keep_checkpoints=1000, val_size=50,
    )  # fmt: skip
    return TrainConfig(**(settings | KNOBS | changes))


@pytest.fixture(scope="module")
def uninterrupted(session_data_dir, tmp_path_factory):
    return fit(config_for(session_data_dir, tmp_path_factory.mktemp("knobs") / "run"), log=quiet)


@pytest.mark.parametrize("step", [2, 5, 7])  # 5 steps per epoch: mid-epoch 1, epoch end, mid-epoch 2
def test_resume_mid_schedule_and_augmentation_is_bit_identical(uninterrupted, session_data_dir, tmp_path, step):
    run_dir = tmp_path / "resumed"
    shutil.copytree(uninterrupted, run_dir)
    for path in checkpoint.list_checkpoints(run_dir / rundir.CHECKPOINTS):
        if int(checkpoint.CHECKPOINT_NAME.match(path.name).group(1)) > step:
            path.unlink()
    for name in (rundir.RESULT, rundir.WEIGHTS, rundir.AVERAGE_WEIGHTS):
        (run_dir / name).unlink()
    fit(config_for(session_data_dir, run_dir), resuming=True, log=quiet)
    for name in (rundir.WEIGHTS, rundir.AVERAGE_WEIGHTS):
        got, _ = checkpoint.load_tensors(run_dir / name)
        want, _ = checkpoint.load_tensors(uninterrupted / name)
        assert all(torch.equal(got[key], want[key]) for key in want), name
    assert read_rows(run_dir / rundir.STEPS) == read_rows(uninterrupted / rundir.STEPS)


def test_control_without_augmentation_the_weights_differ(uninterrupted, session_data_dir, tmp_path):
    plain = fit(
        config_for(session_data_dir, tmp_path / "plain", rotate=0.0, scale=0.0, shift=0.0, elastic=0.0), log=quiet
    )
    got, _ = checkpoint.load_tensors(plain / rundir.WEIGHTS)
    want, _ = checkpoint.load_tensors(uninterrupted / rundir.WEIGHTS)
    assert any(not torch.equal(got[key], want[key]) for key in want)


def test_the_knobs_are_recorded_and_both_weights_saved(uninterrupted):
    config = json.loads((uninterrupted / rundir.CONFIG).read_text())
    assert {key: config[key] for key in KNOBS} == KNOBS
    result = json.loads((uninterrupted / rundir.RESULT).read_text())
    assert result["weights"] == rundir.AVERAGE_WEIGHTS
    assert {"test/acc", "ema/test/acc"} <= result["test"].keys()
    rows = read_rows(uninterrupted / rundir.METRICS)
    assert all("ema/val/acc" in row and "val/acc" in row for row in rows)


def test_evaluation_data_is_never_augmented(uninterrupted, session_data_dir):
    # The recorded test accuracy of the raw weights equals a plain evaluation of them on the raw test images.
    from digitlab.data.dataset import load, normalize
    from digitlab.inference.load import load_model
    from digitlab.training.evaluate import evaluate

    model, _ = load_model(uninterrupted, weights="raw")
    data = load(str(session_data_dir))
    result = evaluate(model, normalize(data.test_images), data.test_labels, 1000)
    recorded = json.loads((uninterrupted / rundir.RESULT).read_text())["test"]
    assert result["accuracy"] == pytest.approx(recorded["test/acc"])
    assert result["loss"] == pytest.approx(recorded["test/loss"], rel=1e-5)


def test_weight_average_against_a_hand_computation():
    model = torch.nn.Linear(2, 1)
    average = ema.WeightAverage(model, decay=0.9)
    start = model.weight.detach().clone()
    expected = start.clone()
    for update in range(4):
        with torch.no_grad():
            model.weight.add_(1.0)
        decay = min(0.9, (1 + update) / (10 + update))
        expected = decay * expected + (1 - decay) * model.weight.detach()
        average.update(model)
    torch.testing.assert_close(average.model.weight, expected)
    assert average.updates == 4


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(schedule="linear"), "unknown schedule"),
        (dict(ema_decay=1.0), "--ema-decay must be in"),
        (dict(label_smoothing=-0.1), "--label-smoothing must be in"),
        (dict(rotate=-1.0), "--rotate must be 0 or more"),
        (dict(target_acc=99.0), "--target-acc is a fraction"),
        (dict(target_acc=0.99, val_size=0), "needs --val-size|give --val-size"),
        (dict(model="lstm", channels=8), "--channels sizes convolution blocks"),
    ],
)
def test_bad_knobs_are_refused(session_data_dir, tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        config_for(session_data_dir, tmp_path / "run", **changes).validate()


def test_evaluate_uses_the_weight_average_unless_told(uninterrupted, session_data_dir, tmp_path, capsys):
    from digitlab import cli

    run = tmp_path / "copy"
    shutil.copytree(uninterrupted, run)
    recorded = json.loads((run / rundir.RESULT).read_text())["test"]
    for weights, key in (("auto", "ema/test/acc"), ("raw", "test/acc"), ("ema", "ema/test/acc")):
        argv = ["evaluate", str(run), "--data-dir", str(session_data_dir), "--json", "--weights", weights]
        assert cli.main(argv) == 0
        record = json.loads(capsys.readouterr().out)
        expected = rundir.WEIGHTS if weights == "raw" else rundir.AVERAGE_WEIGHTS
        assert record["data"]["weights"] == expected
        assert record["accuracy"] == pytest.approx(recorded[key])
