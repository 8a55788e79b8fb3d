"""The CUDA path: training, bit-identical resume with --deterministic, bf16, fp16 with its grad scaler,
--precision auto, and DDP over NCCL. Marked `gpu`: run with `pytest -m gpu` on a CUDA machine
(benchmarks/gpu_check.sh does); skipped where torch sees no CUDA GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.models import MODELS
from digitlab.store import rundir
from digitlab.store.checkpoint import load_tensors
from digitlab.training.fit import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def quiet(*args, **kwargs):
    pass


def config_for(data_dir, run_dir, **changes) -> TrainConfig:
    settings = dict(
        model="lstm", hidden_size=32, num_layers=1, batch_size=50, epochs=2, data_dir=str(data_dir),
        run_dir=str(run_dir), device="cuda", progress="none",
    )  # fmt: skip
    return TrainConfig(**(settings | changes))


def result(run_dir) -> dict:
    return json.loads((run_dir / rundir.RESULT).read_text())


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_tensors(run_dir / rundir.WEIGHTS)[0]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_on_cuda(session_data_dir, tmp_path, model):
    # Each model at its own default size, with the on-device augmentation and the weight average on.
    settings = dict(model=model, hidden_size=None, num_layers=None, epochs=1, rotate=10.0, shift=2.0, ema_decay=0.9)
    run = fit(config_for(session_data_dir, tmp_path / "run", **settings), log=quiet)
    env = json.loads((run / rundir.ENV).read_text())
    assert env["device"].startswith("cuda") and "cuda" in env
    assert result(run)["final"]["test/acc"] > 0.1
    assert result(run)["weights"] == rundir.AVERAGE_WEIGHTS


def test_resume_is_bit_identical_with_deterministic(session_data_dir, tmp_path):
    whole = fit(config_for(session_data_dir, tmp_path / "whole", deterministic=True), log=quiet)
    part = fit(config_for(session_data_dir, tmp_path / "part", deterministic=True, epochs=1), log=quiet)
    fit(config_for(session_data_dir, part, deterministic=True, epochs=2), resuming=True, log=quiet)
    first, second = weights(whole), weights(part)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


@pytest.mark.parametrize("precision", ["bf16", "fp16", "auto"])
def test_reduced_precision_trains(session_data_dir, tmp_path, precision):
    # lr 0.01 for 3 epochs: fp32 and bf16 on the CPU end at a loss of 0.36 on this data (chance: ln 10 = 2.30)
    config = config_for(session_data_dir, tmp_path / "run", precision=precision, lr=0.01, epochs=3)
    run = fit(config, log=quiet)
    saved = rundir.load_config(run)
    assert saved.precision in ("bf16", "fp16", "fp32")
    if precision == "auto":
        assert saved.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert result(run)["final"]["train/loss"] < 1.0  # clearly learning: less than half of chance


def test_fp16_checkpoints_its_grad_scaler(session_data_dir, tmp_path):
    run = fit(config_for(session_data_dir, tmp_path / "run", precision="fp16", epochs=1), log=quiet)
    (latest,) = sorted((run / rundir.CHECKPOINTS).iterdir())[-1:]
    metadata = load_tensors(latest)[1]
    assert metadata["extra"]["scaler"]["scale"] > 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP over NCCL needs two GPUs")
def test_ddp_over_nccl(session_data_dir, tmp_path):
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "digitlab",
               "train", "--model", "mlp", "--batch-size", "50", "--epochs", "1", "--device", "cuda",
               "--data-dir", str(session_data_dir), "--run-dir", str(run), "--progress", "none"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=os.environ | {"MASTER_ADDR": "127.0.0.1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert result(run)["world_size"] == 2


def test_divergence_on_cuda_is_undone_and_stops_at_the_bad_step(session_data_dir, tmp_path):
    # With --check-every 32 the verdicts are read every 32 steps: step 2 is found bad after later steps ran.
    from digitlab.errors import TrainingError
    from digitlab.store import checkpoint

    run = tmp_path / "run"
    config = config_for(
        session_data_dir, run, model="mlp", optimizer="sgd", lr=1e30, divergence_factor=0, check_every=32
    )
    with pytest.raises(TrainingError, match=r"step 2 \(global step 2\)"):
        fit(config, log=quiet)
    tensors, metadata = checkpoint.load_latest(run / rundir.CHECKPOINTS, log=quiet)
    assert metadata["progress"]["global_step"] == 1
    assert all(torch.isfinite(value).all() for name, value in tensors.items() if name.startswith("model."))


def test_deferred_checks_compute_what_immediate_ones_do(session_data_dir, tmp_path):
    settings = dict(deterministic=True, ema_decay=0.9, check_every=32)
    deferred = fit(config_for(session_data_dir, tmp_path / "deferred", **settings), log=quiet)
    immediate = fit(config_for(session_data_dir, tmp_path / "immediate", deterministic=True, ema_decay=0.9), log=quiet)
    first, second = weights(deferred), weights(immediate)
    assert all(torch.equal(first[name], second[name]) for name in first)
