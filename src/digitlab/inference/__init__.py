"""Inference: loading a finished run's model, and classifying images with it."""
