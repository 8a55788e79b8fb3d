"""Evaluation (digitlab.training.evaluate): loss, accuracy and predictions over a split; the confusion matrix."""

from __future__ import annotations

import pytest
import torch

from digitlab.training.evaluate import confusion_matrix, evaluate


class Fixed(torch.nn.Module):
    """Logits read off the input: image i's logits are its first row."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, images):
        return images[:, 0, :] * self.scale


def test_evaluate_over_several_batches():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 1, 1])
    result = evaluate(Fixed(), logits.unsqueeze(1), labels, batch_size=2)
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
    assert result["predictions"].tolist() == [0, 1, 2, 0, 1]


def test_evaluate_leaves_the_training_mode_as_it_was():
    model = Fixed().train()
    evaluate(model, torch.zeros(2, 1, 3), torch.tensor([0, 1]), batch_size=2)
    assert model.training


def test_confusion_matrix_counts_true_against_predicted():
    matrix = confusion_matrix(torch.tensor([0, 1, 2, 1, 1]), torch.tensor([0, 1, 2, 0, 1]), 3)
    assert matrix.tolist() == [[1, 0, 0], [1, 2, 0], [0, 0, 1]]
