"""digitlab: train, time, compare and serve handwritten-digit classifiers."""

__version__ = "0.1.0"
