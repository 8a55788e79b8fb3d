"""Running a model on images (digitlab.inference.classifier): a PyTorch module's probabilities, and the
batch loop every classifier shares (in_batches), through a run's TorchClassifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import digitlab.inference.classifier
from digitlab.data.dataset import load, normalize
from digitlab.errors import DataError
from digitlab.inference.classifier import TorchClassifier, probabilities
from digitlab.inference.load import load_model


@pytest.fixture(scope="module")
def test_images(session_data_dir):
    return load(session_data_dir, log=lambda *a: None).test_images[:8]


def test_probabilities_sum_to_one(trained_run, test_images):
    model, _ = load_model(trained_run)
    probs = probabilities(model, test_images)
    assert probs.shape == (8, 10)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(8))


def test_probabilities_normalise_raw_pixels_as_training_did(trained_run, test_images):
    model, _ = load_model(trained_run)
    with torch.no_grad():
        expected = torch.softmax(model(normalize(test_images)), dim=1)
    torch.testing.assert_close(probabilities(model, test_images), expected)


def test_the_classifier_batches_and_checks_the_image_shape(monkeypatch, trained_run, test_images):
    classifier = TorchClassifier(trained_run)
    images = test_images.numpy()
    whole = classifier.probabilities(images)
    assert whole.dtype == np.float32 and whole.shape == (8, 10)
    np.testing.assert_array_equal(whole, probabilities(classifier.model, test_images).numpy())
    monkeypatch.setattr(digitlab.inference.classifier, "BATCH", 3)  # 8 images: passes of 3, 3 and 2
    np.testing.assert_allclose(classifier.probabilities(images), whole, rtol=0, atol=1e-6)
    assert classifier.probabilities(images[:0]).shape == (0, 10)
    with pytest.raises(DataError, match=r"takes images of shape \(N, 28, 28\), got \(2, 12, 16\)"):
        classifier.probabilities(np.zeros((2, 12, 16), dtype=np.uint8))
