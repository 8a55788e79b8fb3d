"""Micro-batches change how a step's gradient is computed, not what it is."""

import pytest
import torch

from digitlab.config import TrainConfig
from digitlab.errors import ConfigError
from digitlab.store import rundir
from digitlab.store.checkpoint import load_tensors
from digitlab.store.files import read_rows
from digitlab.training.fit import fit
from helpers import write_dataset


@pytest.mark.parametrize("model", ["lstm", "cnn"])
def test_micro_batches_give_the_whole_batch_step(tmp_path, model):
    data = write_dataset(tmp_path / "data", shape=(12, 12), n_train=120, n_test=40)
    base = TrainConfig(
        model=model, hidden_size=16, batch_size=60, epochs=2, threads=1, data_dir=str(data), progress="none"
    )
    whole = fit(base.replace(micro_batch=60, run_dir=str(tmp_path / "whole")), log=lambda *a: None)
    split = fit(base.replace(micro_batch=7, run_dir=str(tmp_path / "split")), log=lambda *a: None)
    assert rundir.load_config(split).micro_batch == 7
    a, _ = load_tensors(whole / rundir.WEIGHTS)
    b, _ = load_tensors(split / rundir.WEIGHTS)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    losses = [[row["train/loss"] for row in read_rows(folder / rundir.STEPS)] for folder in (whole, split)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_auto_micro_batch_is_recorded(tmp_path):
    data = write_dataset(tmp_path / "data", shape=(8, 8), n_train=300, n_test=40)
    run = fit(
        TrainConfig(
            model="mlp",
            batch_size=300,
            epochs=1,
            threads=1,
            data_dir=str(data),
            progress="none",
            run_dir=str(tmp_path / "run"),
        ),
        log=lambda *a: None,
    )
    assert rundir.load_config(run).micro_batch == 100  # the CPU default


def test_batch_norm_passes_the_whole_batch_by_default(tmp_path):
    # batch 101 was cut into 100 + 1 on the CPU, and batch norm failed on the pass of one example mid-run
    data = write_dataset(tmp_path / "data", shape=(12, 12), n_train=202, n_test=40)
    config = TrainConfig(
        model="vgg", channels=4, hidden_size=16, batch_size=101, epochs=1, threads=1, val_size=0,
        data_dir=str(data), progress="none", run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    run = fit(config, log=lambda *a: None)
    assert rundir.load_config(run).micro_batch == 101
    assert rundir.is_finished(run)


def test_batch_norm_pass_of_one_example_is_refused_before_training(tmp_path):
    data = write_dataset(tmp_path / "data", shape=(12, 12), n_train=200, n_test=40)
    config = TrainConfig(
        model="vgg", channels=4, hidden_size=16, batch_size=101, micro_batch=50, epochs=1, threads=1, val_size=0,
        data_dir=str(data), progress="none", run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    with pytest.raises(ConfigError, match="batch norm.*micro-batch 50"):
        fit(config, log=lambda *a: None)
    assert not (tmp_path / "run").exists()


def test_a_process_share_rounded_up_is_checked_too(tmp_path):
    # 101 examples over 2 processes: rank 0 takes 51 (index[0::2]), cut by 50 into 50 + 1
    from digitlab.data.dataset import load, prepare
    from digitlab.training.distributed import Context
    from digitlab.training.session import resolve_config

    data = prepare(load(write_dataset(tmp_path / "data", shape=(12, 12), n_train=202, n_test=10)), 0, 0, 0, 0)
    config = TrainConfig(model="vgg", channels=4, hidden_size=16, batch_size=101, micro_batch=50, val_size=0)
    with pytest.raises(ConfigError, match="batch norm"):
        resolve_config(config, data, torch.device("cpu"), Context(world_size=2, local_world_size=2))
    assert resolve_config(config.replace(micro_batch=51), data, torch.device("cpu"), Context(world_size=2))
