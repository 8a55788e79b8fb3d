"""Classifying images (digitlab.inference.predict)."""

from __future__ import annotations

import pytest
import torch

from digitlab.data.dataset import load, normalize
from digitlab.inference.load import load_model
from digitlab.inference.predict import probabilities


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
