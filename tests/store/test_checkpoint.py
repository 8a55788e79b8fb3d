"""The checkpoint format (digitlab.store.checkpoint): tensors in safetensors, the rest as JSON metadata;
model, optimizer and random states come back as they were saved; pruning; damaged files skipped."""

from __future__ import annotations

import random

import numpy as np
import pytest
import safetensors.torch
import torch

from digitlab.errors import CheckpointError
from digitlab.store import checkpoint


def quiet(*args, **kwargs):
    pass


def trained_pair(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A small model and an Adam optimizer that has taken two steps (so it has state to save)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.99))
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        optimizer.step()
    return model, optimizer


def draws() -> tuple:
    """One draw from each random generator a checkpoint restores."""
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


# --- the file itself -------------------------------------------------------------------------------------


def test_tensors_and_metadata_round_trip(tmp_path):
    tensors = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    checkpoint.save_tensors(tmp_path / "x.safetensors", tensors, {"note": [1, "two"]})
    loaded, metadata = checkpoint.load_tensors(tmp_path / "x.safetensors")
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[name], tensors[name]) for name in tensors)
    assert metadata == {"note": [1, "two"]}


def test_loading_a_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load_tensors(tmp_path / "nothing.safetensors")


def test_loading_a_cut_off_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "x.safetensors"
    checkpoint.save_tensors(path, {"a": torch.zeros(100)})
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(CheckpointError, match="damaged") as caught:
        checkpoint.load_tensors(path)
    assert str(path) in str(caught.value)


def test_checkpoint_names_carry_the_global_step(tmp_path):
    path = checkpoint.checkpoint_path(tmp_path, 1234)
    assert path == tmp_path / "step-000001234.safetensors"
    assert int(checkpoint.CHECKPOINT_NAME.match(path.name).group(1)) == 1234


def test_state_hash_follows_the_weights():
    a, _ = trained_pair(seed=0)
    b, _ = trained_pair(seed=0)
    c, _ = trained_pair(seed=1)
    assert checkpoint.state_sha256(a) == checkpoint.state_sha256(b)
    assert checkpoint.state_sha256(a) != checkpoint.state_sha256(c)


# --- save and load: everything comes back ---------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A checkpoint of a trained model and optimizer at global step 7; and the draws that followed the save."""
    model, optimizer = trained_pair(seed=0)
    folder = tmp_path / "checkpoints"
    progress = {"epoch": 1, "step": 2, "global_step": 7}
    checkpoint.save_checkpoint(folder, model, optimizer, progress, keep=2, extra={"world_size": 1})
    return folder, model, optimizer, draws()


def test_load_state_restores_the_model(saved):
    folder, model, _, _ = saved
    fresh, optimizer = trained_pair(seed=1)
    checkpoint.load_state(fresh, optimizer, *checkpoint.load_latest(folder, log=quiet))
    assert checkpoint.state_sha256(fresh) == checkpoint.state_sha256(model)


def test_load_state_restores_the_optimizer(saved):
    folder, model, optimizer, _ = saved
    fresh, fresh_optimizer = trained_pair(seed=1)
    checkpoint.load_state(fresh, fresh_optimizer, *checkpoint.load_latest(folder, log=quiet))
    want, got = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert got["param_groups"] == want["param_groups"]
    for param_id, state in want["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(got["state"][param_id][name]), torch.as_tensor(value)), name
    # ...so the next step from either ends at the same weights.
    for m, o in ((model, optimizer), (fresh, fresh_optimizer)):
        torch.manual_seed(5)
        o.zero_grad()
        m(torch.randn(5, 4)).square().sum().backward()
        o.step()
    assert checkpoint.state_sha256(fresh) == checkpoint.state_sha256(model)


def test_load_state_restores_the_random_states(saved):
    folder, _, _, after_save = saved
    draws()  # move every generator on
    model, optimizer = trained_pair(seed=1)
    checkpoint.load_state(model, optimizer, *checkpoint.load_latest(folder, log=quiet))
    assert draws() == after_save


def test_load_state_returns_the_progress_record(saved):
    folder, _, _, _ = saved
    model, optimizer = trained_pair(seed=1)
    tensors, metadata = checkpoint.load_latest(folder, log=quiet)
    assert checkpoint.load_state(model, optimizer, tensors, metadata) == {"epoch": 1, "step": 2, "global_step": 7}
    assert metadata["extra"] == {"world_size": 1}


def test_rank_random_states_round_trip():
    cpu = torch.device("cpu")
    states = checkpoint.rank_random_states(cpu)
    expected = draws()
    draws()
    checkpoint.set_rank_random_states(states, cpu)
    assert draws() == expected


# --- the checkpoints folder ------------------------------------------------------------------------------


def test_pruning_keeps_the_newest_whole_checkpoints(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    stray = folder / "step-000000009.safetensors"  # a newer file (say, one resume found unreadable)
    stray.write_bytes(b"damaged")
    for step in range(1, 5):
        checkpoint.save_checkpoint(folder, model, optimizer, {"global_step": step}, keep=2)
    # The one just written and the one before it; a newer file is never what pruning removes.
    assert [p.name for p in checkpoint.list_checkpoints(folder)] == [
        "step-000000003.safetensors",
        "step-000000004.safetensors",
        stray.name,
    ]
    assert not list(folder.glob(".*.tmp"))


def test_keep_one_leaves_only_the_newest(tmp_path):
    model, optimizer = trained_pair()
    for step in (3, 6, 9):
        checkpoint.save_checkpoint(tmp_path, model, optimizer, {"global_step": step}, keep=1)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step-000000009.safetensors"]


def test_listing_ignores_temporary_and_other_files(tmp_path):
    for name in ("step-000000002.safetensors", "step-000000001.safetensors", ".step-000000003.safetensors.ab12.tmp",
                 "step-000000004.safetensors.damaged", "notes.txt", "step-5.safetensors"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "step-000000001.safetensors",
        "step-000000002.safetensors",
    ]


def test_listing_a_missing_folder_is_empty(tmp_path):
    assert checkpoint.list_checkpoints(tmp_path / "none") == []


def test_load_latest_without_checkpoints_is_none(tmp_path):
    assert checkpoint.load_latest(tmp_path, log=pytest.fail) is None


def test_load_latest_skips_a_damaged_newest_file(tmp_path):
    model, optimizer = trained_pair()
    for step in (1, 2):
        checkpoint.save_checkpoint(tmp_path, model, optimizer, {"global_step": step}, keep=5)
    newest = checkpoint.checkpoint_path(tmp_path, 2)
    newest.write_bytes(newest.read_bytes()[:100])
    lines = []
    _, metadata = checkpoint.load_latest(tmp_path, log=lines.append)
    assert metadata["progress"]["global_step"] == 1
    assert len(lines) == 1 and "skipping unreadable checkpoint" in lines[0] and newest.name in lines[0]


def test_load_latest_skips_a_file_without_the_checkpoint_metadata(tmp_path):
    model, optimizer = trained_pair()
    checkpoint.save_checkpoint(tmp_path, model, optimizer, {"global_step": 1}, keep=5)
    impostor = checkpoint.checkpoint_path(tmp_path, 2)  # a whole safetensors file, but not a digitlab checkpoint
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(impostor), metadata={"digitlab": "{}"})
    lines = []
    _, metadata = checkpoint.load_latest(tmp_path, log=lines.append)
    assert metadata["progress"]["global_step"] == 1
    assert len(lines) == 1 and "not a digitlab checkpoint" in lines[0] and impostor.name in lines[0]
