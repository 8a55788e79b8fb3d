"""The run directory: config.json, env.json, metrics.jsonl (per epoch), steps.jsonl (per step),
checkpoints/, and once the run has finished, model.safetensors and result.json (written last).

A directory without result.json is an unfinished run: commands that need a finished one refuse it,
and `train --resume` continues it.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from digitlab.checkpoint import atomic_write, load_tensors, save_tensors
from digitlab.config import ConfigError, TrainConfig

CONFIG, ENV, METRICS, STEPS, WEIGHTS, RESULT, CHECKPOINTS = (
    "config.json", "env.json", "metrics.jsonl", "steps.jsonl", "model.safetensors", "result.json", "checkpoints")


class RunError(ValueError):
    """A run directory that cannot be used as asked; the message says why and what to do."""


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{config.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / RESULT).is_file()


def create(run_dir: Path, config: TrainConfig, environment: dict) -> None:
    """Make a new run directory; refuse one that already holds a run."""
    run_dir = Path(run_dir)
    if (run_dir / CONFIG).exists():
        state = "a finished run" if is_finished(run_dir) else "an unfinished run (continue it with --resume)"
        raise RunError(f"{run_dir} already holds {state}; choose another --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / ENV, environment)
        # config.json last: its presence is what marks the folder as a run.
        write_json(run_dir / CONFIG, config.to_dict())
    except OSError as error:
        raise RunError(f"cannot write the run directory {run_dir}: {error.strerror or error}; "
                       f"choose a writable --run-dir") from None


def write_json(path: Path, value) -> None:
    atomic_write(path, (json.dumps(value, indent=2) + "\n").encode())


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing; is {Path(path).parent} a digitlab run directory?") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RunError(f"{path} is damaged ({error}); the run cannot be read") from None


def load_config(run_dir: Path) -> TrainConfig:
    try:
        return TrainConfig.from_dict(read_json(Path(run_dir) / CONFIG))
    except (ConfigError, TypeError) as error:
        raise RunError(f"{run_dir}/{CONFIG} is not a digitlab config: {error}") from None


def append_rows(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "a") as out:
        out.write("".join(json.dumps(row) + "\n" for row in rows))
        out.flush()
        os.fsync(out.fileno())


def read_rows(path: Path) -> list[dict]:
    """JSON lines; a last line cut off by a crash is dropped, any other bad line is an error."""
    if not Path(path).exists():
        return []
    lines = Path(path).read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise RunError(f"{path}:{number} is not valid JSON; the run's records are damaged") from None
    return rows


def truncate_rows(path: Path, keep) -> None:
    """Rewrite a JSON-lines file keeping only rows for which keep(row) is true (used on resume)."""
    rows = [row for row in read_rows(path) if keep(row)]
    atomic_write(path, "".join(json.dumps(row) + "\n" for row in rows).encode())


def save_weights(run_dir: Path, model: torch.nn.Module, info: dict) -> None:
    save_tensors(Path(run_dir) / WEIGHTS, model.state_dict(), info)


def read_weights(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A finished run's weights and their metadata (model, image shape, classes)."""
    try:
        return load_tensors(Path(run_dir) / WEIGHTS)
    except ValueError as error:
        raise RunError(str(error)) from None


def apply_weights(run_dir: Path, model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load read_weights()'s tensors into `model`; RunError if they belong to another model."""
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise RunError(f"{run_dir}/{WEIGHTS} does not fit the model its config describes ({detail})") from None


def physical_cores() -> int:
    """Physical cores this process may run on (hyperthreads share a core's arithmetic units)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores, processor, physical = set(), None, "0"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "processor":
                processor = int(value)
            elif key == "physical id":
                physical = value
            elif key == "core id" and processor in allowed:
                cores.add((physical, value))
    except OSError:
        pass
    return len(cores) or len(allowed) or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_pressure() -> str | None:
    """/proc/pressure/cpu's 'some' line: how much a busy neighbour was slowing this machine."""
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None


def cpu_pressure_avg10() -> float | None:
    """The share of the last 10 s (percent) in which some runnable task waited for a CPU."""
    line = cpu_pressure()
    if not line or "avg10=" not in line:
        return None
    return float(line.split("avg10=")[1].split()[0])


def environment(device: torch.device) -> dict:
    info = {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "physical_cores": physical_cores(),
            "threads": torch.get_num_threads(), "device": str(device), "cpu_pressure": cpu_pressure(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["device_name"] = info["cpu"]
    return info
