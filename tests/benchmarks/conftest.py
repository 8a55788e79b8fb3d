"""Fixtures for the scripts under benchmarks/: load one as a module, with benchmarks/ on sys.path (`import common`)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from helpers import REPO_ROOT, write_dataset

BENCHMARKS = REPO_ROOT / "benchmarks"


@pytest.fixture
def load_script(monkeypatch):
    """A factory: load_script("epoch_time") -> benchmarks/epoch_time.py as a fresh module."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up here
        spec.loader.exec_module(module)
        return module

    yield load
    torch.set_num_threads(threads)  # scripts set it for the whole process


@pytest.fixture
def tiny_data(tmp_path):
    """Synthetic 28x28 digits: 100 training and 20 test examples of 10 classes."""
    return write_dataset(tmp_path / "data", n_train=100, n_test=20)
