"""Where a run computes (digitlab.training.device): the device, the micro-batch, precision and seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError
from digitlab.training import device as device_module
from digitlab.training.device import (
    CPU_MICRO_BATCH,
    autocast,
    micro_batch,
    native_bf16,
    parse_device,
    resolve_precision,
    seed_everything,
)


@pytest.mark.parametrize("name", ["tpu", "meta", "cuda:x", ""])
def test_unsupported_device_is_refused(name):
    with pytest.raises(ConfigError, match="unsupported device"):
        parse_device(name)


def test_cpu_is_the_cpu():
    assert parse_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_auto_is_the_cpu_without_a_gpu():
    assert parse_device("auto") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_refused(name):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        parse_device(name)


def test_micro_batch_defaults_to_100_on_the_cpu():
    assert micro_batch(TrainConfig(batch_size=500), torch.device("cpu"), False) == CPU_MICRO_BATCH == 100


def test_micro_batch_defaults_to_the_batch_on_a_gpu():
    assert micro_batch(TrainConfig(batch_size=500), torch.device("cuda"), False) == 500


def test_micro_batch_defaults_to_the_batch_under_batch_norm_on_every_device():
    for device in ("cpu", "cuda"):
        assert micro_batch(TrainConfig(batch_size=128), torch.device(device), True) == 128


def test_micro_batch_given_is_kept():
    assert micro_batch(TrainConfig(batch_size=500, micro_batch=7), torch.device("cpu"), False) == 7
    assert micro_batch(TrainConfig(batch_size=500, micro_batch=250), torch.device("cpu"), True) == 250


def test_fp32_runs_without_autocast():
    with autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == torch.float32


def test_bf16_autocasts_on_the_cpu():
    with autocast(torch.device("cpu"), "bf16"):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == torch.bfloat16


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(4)
    first = (random.random(), float(np.random.rand()), torch.rand(2).tolist())
    seed_everything(4)
    assert (random.random(), float(np.random.rand()), torch.rand(2).tolist()) == first


# --- precision ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_it_is_native(monkeypatch, native):
    monkeypatch.setattr(device_module, "native_bf16", lambda device: native)
    assert resolve_precision("auto", torch.device("cpu"), log=pytest.fail) == ("bf16" if native else "fp32")


def cpu_with(monkeypatch, bf16_flag: bool, amx: bool = False, bf16_lstm: bool = True, narrowed: str | None = None):
    """Imitate a CPU: its flags, whether oneDNN runs a bf16 LSTM, and what oneDNN was narrowed to."""
    from digitlab.perf import machine

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16_flag)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(machine, "onednn_runs_bf16_lstm", lambda: bf16_lstm)
    monkeypatch.setattr(device_module, "onednn_runs_bf16_lstm", lambda: bf16_lstm)
    if narrowed:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", narrowed)
    else:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)


def test_bf16_without_native_support_runs_with_one_warning(monkeypatch):
    cpu_with(monkeypatch, bf16_flag=False)
    lines = []
    assert resolve_precision("bf16", torch.device("cpu"), log=lines.append) == "bf16"
    assert len(lines) == 1 and "slower than fp32" in lines[0] and "--precision auto" in lines[0]
    assert "no AVX512_BF16 or AMX" in lines[0] and "PyTorch's own kernels" not in lines[0]


def test_bf16_where_onednn_has_no_bf16_lstm_warns_of_the_other_kernels(monkeypatch):
    cpu_with(monkeypatch, bf16_flag=True, bf16_lstm=False, narrowed="avx2")
    lines = []
    assert resolve_precision("bf16", torch.device("cpu"), log=lines.append) == "bf16"
    assert resolve_precision("auto", torch.device("cpu"), log=lines.append) == "fp32"
    assert len(lines) == 1 and "oneDNN narrowed to AVX2" in lines[0] and "PyTorch's own kernels" in lines[0]


def test_native_bf16_reads_the_cpu_flags(monkeypatch):
    cpu_with(monkeypatch, bf16_flag=False, amx=True)
    assert native_bf16(torch.device("cpu"))
    cpu_with(monkeypatch, bf16_flag=False, amx=False)
    assert not native_bf16(torch.device("cpu"))


@pytest.mark.parametrize("narrowed", ["AVX2", "avx512_core", "AVX512_CORE_VNNI"])
def test_native_bf16_is_off_where_onednn_is_narrowed_below_it(monkeypatch, narrowed):
    cpu_with(monkeypatch, bf16_flag=True, narrowed=narrowed)
    assert not native_bf16(torch.device("cpu"))


@pytest.mark.parametrize("narrowed", ["AVX512_CORE_BF16", "AVX512_CORE_AMX", "ALL"])
def test_native_bf16_stays_where_onednn_keeps_it(monkeypatch, narrowed):
    cpu_with(monkeypatch, bf16_flag=True, narrowed=narrowed)
    assert native_bf16(torch.device("cpu"))


def test_native_bf16_is_off_where_a_bf16_lstm_does_not_run(monkeypatch):
    cpu_with(monkeypatch, bf16_flag=True, bf16_lstm=False)
    assert not native_bf16(torch.device("cpu"))


@pytest.mark.parametrize("bf16_lstm", [True, False])
def test_bf16_forward_runs_without_onednn_only_where_onednn_has_no_bf16_lstm(monkeypatch, bf16_lstm):
    cpu_with(monkeypatch, bf16_flag=True, bf16_lstm=bf16_lstm)
    assert torch.backends.mkldnn.enabled
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.backends.mkldnn.enabled == bf16_lstm
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    assert torch.backends.mkldnn.enabled
    with autocast(torch.device("cpu"), "fp32"):
        assert torch.backends.mkldnn.enabled and not torch.is_autocast_enabled("cpu")


def test_onednn_is_put_back_when_the_forward_pass_fails(monkeypatch):
    cpu_with(monkeypatch, bf16_flag=False, bf16_lstm=False)
    with pytest.raises(ValueError), autocast(torch.device("cpu"), "bf16"):
        raise ValueError("a forward pass that fails")
    assert torch.backends.mkldnn.enabled


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_explicit_precisions_are_kept(precision):
    assert resolve_precision(precision, torch.device("cpu"), log=lambda line: None) == precision
