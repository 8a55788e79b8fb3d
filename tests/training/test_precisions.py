"""Every model trains under every CPU precision (fp32, bf16, auto) through `digitlab train`, and the run records
the precision that ran and what the CPU's kernels could do.

tests/training/test_cpu_classes.py runs this file again with oneDNN and ATen narrowed to an older CPU class, so
that a machine with AVX-512 also tests what a laptop CPU (AVX2 only) meets: there oneDNN has no bf16 LSTM.
"""

from __future__ import annotations

import json

import pytest

from digitlab.cli import main
from digitlab.models import MODELS
from digitlab.perf.machine import cpu_computes_bf16, onednn_max_isa
from digitlab.store import rundir
from helpers import write_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), shape=(12, 12), n_train=40, n_test=10)


def size_flags(model: str) -> list[str]:
    flags = ["--hidden-size", "8"]
    if model == "vgg":
        flags += ["--channels", "4"]
    elif model not in ("cnn", "mlp"):
        flags += ["--num-layers", "1"]
    return flags


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_in_every_cpu_precision(data, tmp_path, capsys, model, precision):
    run = tmp_path / "run"
    argv = ["train", "--model", model, "--precision", precision, "--batch-size", "20", "--epochs", "1"]
    argv += ["--threads", "1", "--progress", "none", "--data-dir", str(data), "--run-dir", str(run), "--device", "cpu"]
    assert main(argv + size_flags(model)) in (0, None)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    ran = rundir.load_config(run).precision
    assert ran == (("bf16" if cpu_computes_bf16() else "fp32") if precision == "auto" else precision)
    env = json.loads((run / rundir.ENV).read_text())
    assert env["precision_requested"] == precision
    assert env["cpu_kernels"]["bf16_native"] == cpu_computes_bf16()
    assert env["cpu_kernels"]["onednn_max_isa"] == onednn_max_isa()
    if precision == "bf16" and not cpu_computes_bf16():
        assert "computes no bf16 natively" in out.out + out.err  # the one warning
