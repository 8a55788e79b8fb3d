"""Evaluation: loss, accuracy and predictions over a whole split, and the confusion matrix."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from digitlab.training.device import autocast


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int, precision: str = "fp32"
) -> dict:
    """Mean loss, accuracy and predictions over a normalised image tensor (already on the device)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    predictions = []
    for start in range(0, len(images), batch_size):
        with autocast(images.device, precision):
            logits = model(images[start : start + batch_size])
        loss_sum += F.cross_entropy(logits.float(), labels[start : start + batch_size], reduction="sum")
        predictions.append(logits.argmax(dim=1))
    model.train(was_training)
    predicted = torch.cat(predictions)
    return {
        "loss": loss_sum.item() / len(images),
        "accuracy": (predicted == labels).float().mean().item(),
        "predictions": predicted.cpu(),
    }


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(true, predicted) counts, (classes, classes)."""
    counts = torch.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)
