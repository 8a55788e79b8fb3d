"""Calibrated confidence (digitlab.inference.calibration): temperature scaling recovers a known temperature, the
calibration error tells a calibrated model from an overconfident one, the threshold rejects the share asked, and
`calibrate_run` fits a tiny run on its validation split and every engine then answers calibrated."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.data.dataset import load, prepare
from digitlab.errors import RunError
from digitlab.inference.calibration import (
    CALIBRATION,
    Calibration,
    calibrate_run,
    expected_calibration_error,
    fit_temperature,
    for_weights,
    logits_of,
    read_calibration,
    reject_threshold,
    reliability_diagram,
    softmax,
    write_calibration,
)
from digitlab.inference.classifier import TorchClassifier, probabilities
from digitlab.inference.load import load_model
from digitlab.training.fit import fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sampled(logits: np.ndarray, temperature: float, seed: int = 0) -> np.ndarray:
    """Labels drawn from softmax(logits / temperature): a model whose calibrated temperature is `temperature`."""
    probabilities = softmax(logits, temperature)
    rng = np.random.default_rng(seed)
    cumulative = probabilities.cumsum(axis=1)
    return (rng.random((len(logits), 1)) > cumulative).sum(axis=1).clip(0, logits.shape[1] - 1)


def synthetic_logits(count: int = 20_000, classes: int = 10, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 3.0, size=(count, classes))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(temperature):
    logits = synthetic_logits()
    labels = sampled(logits, temperature)
    assert fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.05)


def test_fit_temperature_refuses_what_is_not_logits_and_labels():
    with pytest.raises(ValueError, match="needs logits"):
        fit_temperature(np.zeros((0, 10)), np.zeros(0))


def test_ece_of_a_calibrated_model_is_near_zero_and_of_an_overconfident_one_large():
    logits = synthetic_logits()
    labels = sampled(logits, 1.0)
    assert expected_calibration_error(softmax(logits), labels) < 0.015
    overconfident = softmax(logits, 0.25)  # the same answers, claimed far surer than they are
    assert expected_calibration_error(overconfident, labels) > 0.15
    assert expected_calibration_error(softmax(logits, fit_temperature(logits, labels)), labels) < 0.015


def test_ece_by_hand():
    # Two bins hold digits: confidence 0.95 (bin 15 of 15), 2 right of 2: gap 0.05; 0.55 (bin 9), 1 right of 2: 0.05.
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 0, 0, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    assert expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0])) == 0.0


def test_reject_threshold_rejects_the_share_asked():
    confidences = np.random.default_rng(2).uniform(0.3, 1.0, size=10_000)
    threshold = reject_threshold(confidences, 0.005)
    assert (confidences < threshold).mean() == pytest.approx(0.005, abs=1e-4)
    assert (confidences < reject_threshold(confidences, 0.1)).mean() == pytest.approx(0.1, abs=1e-4)
    assert reject_threshold(confidences, 0.0) is None
    with pytest.raises(ValueError):
        reject_threshold(confidences, 1.0)


def test_reliability_diagram_is_a_png_with_no_temporary_left(tmp_path):
    logits = synthetic_logits(2000)
    reliability_diagram(softmax(logits), sampled(logits, 1.0), tmp_path / "reliability.png", "synthetic")
    assert (tmp_path / "reliability.png").read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["reliability.png"]


# --- calibration.json -----------------------------------------------------------------------------------------


def test_a_run_without_calibration_reads_none_and_answers_at_temperature_one(trained_run):
    assert read_calibration(trained_run) is None
    classifier = TorchClassifier(trained_run)
    assert (classifier.temperature, classifier.reject_below) == (1.0, None)


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", '{"reject_below": 0.5}', '{"temperature": -1}', '{"temperature": "hot"}',
     '{"temperature": 1.5, "reject_below": 2}'],
)  # fmt: skip
def test_a_damaged_calibration_is_one_line(tmp_path, text):
    (tmp_path / CALIBRATION).write_text(text)
    with pytest.raises(RunError) as caught:
        read_calibration(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / CALIBRATION) in message and "digitlab calibrate" in message


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory, session_data_dir):
    """A tiny MLP trained for one epoch with 60 of the 300 synthetic training images held out, and an average."""
    config = TrainConfig(
        model="mlp", hidden_size=16, batch_size=50, epochs=1, val_size=60, seed=3, ema_decay=0.9,
        data_dir=str(session_data_dir), run_dir=str(tmp_path_factory.mktemp("validated") / "run"),
        threads=1, progress="none", device="cpu",
    )  # fmt: skip
    return fit(config, log=lambda *args, **kwargs: None)


@pytest.fixture
def calibrated(validated_run, session_data_dir, tmp_path):
    import shutil

    run = shutil.copytree(validated_run, tmp_path / "run")
    return run, calibrate_run(run, str(session_data_dir))


def test_calibrate_run_fits_on_the_runs_validation_split(calibrated, session_data_dir):
    run, calibration = calibrated
    assert read_calibration(run) == calibration
    assert (calibration.split, calibration.images, calibration.seed) == ("validation", 60, 3)
    assert calibration.weights == "model-ema.safetensors" and calibration.dataset == "custom"
    # The same split training drew: its logits give the temperature and the figures recorded.
    model, _ = load_model(run)
    dataset = prepare(load(session_data_dir, log=lambda *a: None), 60, 0, 0, 3)
    logits = logits_of(model, dataset.val_images).double().numpy()
    labels = dataset.val_labels.numpy()
    assert calibration.temperature == pytest.approx(fit_temperature(logits, labels))
    assert calibration.ece_after == pytest.approx(
        expected_calibration_error(softmax(logits, calibration.temperature), labels)
    )
    assert calibration.nll_after <= calibration.nll_before + 1e-12
    assert calibration.accuracy == pytest.approx((logits.argmax(axis=1) == labels).mean())
    assert 0 <= calibration.reject_below <= 1 and calibration.rejected <= calibration.reject_share
    assert "/" not in json.dumps(dataclasses.asdict(calibration))  # no paths: the file does not depend on the command


def test_every_engine_answers_calibrated_probabilities(calibrated, session_data_dir):
    run, calibration = calibrated
    classifier = TorchClassifier(run)
    assert (classifier.temperature, classifier.reject_below) == (calibration.temperature, calibration.reject_below)
    images = load(session_data_dir, log=lambda *a: None).test_images[:8]
    logits = logits_of(classifier.model, images).double().numpy()
    expected = softmax(logits, calibration.temperature)
    np.testing.assert_allclose(classifier.probabilities(images.numpy()), expected, rtol=0, atol=1e-5)
    plain = probabilities(classifier.model, images)  # the module function's default: T 1, as before
    np.testing.assert_allclose(plain.numpy(), softmax(logits), rtol=0, atol=1e-5)
    # The other weights of the run were not calibrated: answered at T 1, with no threshold.
    raw = TorchClassifier(run, weights="raw")
    assert (raw.temperature, raw.reject_below) == (1.0, None)


def test_a_calibration_of_other_weights_is_refused(calibrated):
    run, calibration = calibrated
    write_calibration(run, dataclasses.replace(calibration, weights_sha256="0" * 64))
    with pytest.raises(RunError, match="was fitted on other weights .*'digitlab calibrate") as caught:
        TorchClassifier(run)
    assert "\n" not in str(caught.value)
    assert for_weights(run, "model.safetensors") is None


def test_a_run_without_a_validation_split_cannot_be_calibrated(trained_run, session_data_dir):
    with pytest.raises(RunError, match="without a validation split.*--val-size") as caught:
        calibrate_run(trained_run, str(session_data_dir))
    assert "\n" not in str(caught.value)
    assert not (trained_run / CALIBRATION).exists()


def test_the_calibration_record_round_trips(tmp_path):
    calibration = Calibration(temperature=1.7, reject_below=None, images=5)
    write_calibration(tmp_path, calibration)
    assert read_calibration(tmp_path) == calibration
    assert math.isclose(json.loads((tmp_path / CALIBRATION).read_text())["temperature"], 1.7)
    assert (
        torch.softmax(torch.tensor([[2.0, 0.0]]) / 1.7, dim=1)[0, 0]
        < torch.softmax(torch.tensor([[2.0, 0.0]]), 1)[0, 0]
    )


def test_a_fine_tuned_run_whose_initial_run_held_out_other_digits_is_refused(validated_run, tmp_path):
    from types import SimpleNamespace

    from digitlab.inference.calibration import _check_init_held_out
    from digitlab.store import rundir

    held_out = {"val_size": 60, "seed": 3, "train_limit": 0, "dataset": "custom"}
    _check_init_held_out(tmp_path, SimpleNamespace(init=str(validated_run), **held_out), rundir)  # the same split
    _check_init_held_out(tmp_path, SimpleNamespace(init=None, **held_out), rundir)  # not fine-tuned
    with pytest.raises(RunError, match="held out other validation digits") as caught:
        _check_init_held_out(tmp_path, SimpleNamespace(init=str(validated_run), **(held_out | {"seed": 4})), rundir)
    assert "\n" not in str(caught.value)
