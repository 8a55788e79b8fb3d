"""The checkpoint format: tensors in safetensors, everything else as JSON in its metadata.

Nothing is ever unpickled. A checkpoint is one file, checkpoints/step-<global step, 9 digits>.safetensors,
written atomically (store.files.atomic_write): a reader sees a whole checkpoint or none. Its tensors are
"model.<name>", "optimizer.<param id>.<name>", "rng.*" (this process's random states) and, under DDP,
"rank<N>.rng.*" for the other processes; its metadata "digitlab" key holds JSON:
{"progress": where the run stands (training.session.Position as a dict), "optimizer": param groups and
scalar state, "random": the random states' non-tensor parts, "extra": {"scaler": ..., "world_size": N}}.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

from digitlab.errors import CheckpointError
from digitlab.store.files import atomic_write

CHECKPOINT_NAME = re.compile(r"^step-(\d{9})\.safetensors$")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    blob = safetensors.torch.save(tensors, metadata={"digitlab": json.dumps(metadata or {})})
    atomic_write(path, blob)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and JSON metadata of a safetensors file; CheckpointError if it is missing or damaged."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = json.loads((handle.metadata() or {}).get("digitlab", "{}"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except Exception as error:  # safetensors raises several types for a damaged header or body
        raise CheckpointError(f"{path} is damaged or not a safetensors file ({error})") from None
    return tensors, metadata


def tensor_sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def state_sha256(model: torch.nn.Module) -> str:
    """One hash over a model's parameter names and values: equal hashes mean identical weights."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# --- random states -------------------------------------------------------------------------------


def random_states() -> tuple[dict[str, torch.Tensor], dict]:
    """Python, NumPy, torch (and CUDA) random states as tensors plus JSON."""
    version, python_state, gauss = random.getstate()
    numpy_kind, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = np.random.get_state()
    tensors = {
        "rng.torch": torch.get_rng_state(),
        "rng.python": torch.tensor(python_state, dtype=torch.int64),
        "rng.numpy": torch.from_numpy(numpy_keys.astype(np.int64)),
    }
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    info = {"python": [version, gauss], "numpy": [numpy_kind, int(numpy_pos), int(numpy_has_gauss), float(numpy_gauss)]}
    return tensors, info


def set_random_states(tensors: dict[str, torch.Tensor], info: dict) -> None:
    version, gauss = info["python"]
    random.setstate((version, tuple(int(v) for v in tensors["rng.python"].tolist()), gauss))
    kind, pos, has_gauss, cached = info["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda_states:
        torch.cuda.set_rng_state_all(cuda_states)


def rank_random_states(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's random states as tensors only, so that DDP can gather every rank's into the
    checkpoint rank 0 writes (CUDA: this rank's own device)."""
    tensors, info = random_states()
    tensors = {name: value for name, value in tensors.items() if not name.startswith("rng.cuda.")}
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    python_gauss = info["python"][1]
    _, numpy_pos, numpy_has_gauss, numpy_gauss = info["numpy"]
    tensors["rng.scalars"] = torch.tensor(
        [math.nan if python_gauss is None else python_gauss, numpy_pos, numpy_has_gauss, numpy_gauss],
        dtype=torch.float64,
    )
    return tensors


def set_rank_random_states(tensors: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore what rank_random_states() returned."""
    python_gauss, numpy_pos, numpy_has_gauss, numpy_gauss = tensors["rng.scalars"].tolist()
    info = {
        "python": [random.getstate()[0], None if math.isnan(python_gauss) else python_gauss],
        "numpy": ["MT19937", int(numpy_pos), int(numpy_has_gauss), numpy_gauss],
    }
    set_random_states({name: value for name, value in tensors.items() if name != "rng.cuda"}, info)
    if "rng.cuda" in tensors and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)


# --- optimizer state -----------------------------------------------------------------------------


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{param_id}.{name}"] = value
            else:
                scalars[f"{param_id}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, param_id, name = key.split(".", 2)
            state.setdefault(int(param_id), {})[name] = value
    for key, value in info["scalars"].items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    groups = info["param_groups"]
    for group in groups:  # JSON turned tuples into lists; torch compares some of them as tuples
        for name, value in group.items():
            if isinstance(value, list) and name != "params":
                group[name] = tuple(value)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --- checkpoints ---------------------------------------------------------------------------------


def checkpoint_path(folder: Path, global_step: int) -> Path:
    return Path(folder) / f"step-{global_step:09d}.safetensors"


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: dict,
    keep: int,
    extra: dict | None = None,
    more: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write checkpoints/step-<global step>.safetensors atomically, then prune to the newest `keep`.
    `more`: further tensors to store (the other DDP ranks' random states)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{name}": value for name, value in model.state_dict().items()}
    optimizer_part, optimizer_info = optimizer_tensors(optimizer)
    random_part, random_info = random_states()
    tensors.update(optimizer_part)
    tensors.update(random_part)
    tensors.update(more or {})
    metadata = {"progress": progress, "optimizer": optimizer_info, "random": random_info, "extra": extra or {}}
    path = checkpoint_path(folder, progress["global_step"])
    save_tensors(path, tensors, metadata)
    older = [p for p in list_checkpoints(folder) if p.name < path.name]  # never a newer one, nor this one
    for old in older[: max(0, len(older) - (keep - 1))]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Whole checkpoint files, oldest first; temporary leftovers of an interrupted write never match."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CHECKPOINT_NAME.match(p.name))


def load_latest(folder: Path, log=print) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The newest checkpoint that loads, skipping (and reporting) damaged ones; None when there is none."""
    for path in reversed(list_checkpoints(folder)):
        try:
            tensors, metadata = load_tensors(path)
            if not {"progress", "optimizer", "random"} <= metadata.keys():
                raise CheckpointError(f"{path} is not a digitlab checkpoint (its metadata lacks the progress record)")
            return tensors, metadata
        except CheckpointError as error:
            log(f"warning: skipping unreadable checkpoint: {error}")
    return None


def load_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], metadata: dict
) -> dict:
    """Load model, optimizer and random states from a checkpoint; return its progress record."""
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    restore_optimizer(optimizer, tensors, metadata["optimizer"])
    set_random_states(tensors, metadata["random"])
    return metadata["progress"]
