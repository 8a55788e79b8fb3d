"""DistributedDataParallel set-up for torchrun: gloo on CPU, NCCL on GPU.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE and the rendezvous variables; without them,
training is a single process and nothing here does anything. Every collective below must be called by
all ranks at the same point of the program.
"""

from __future__ import annotations

import collections
import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from digitlab.errors import DigitlabError

# The latest collectives' handles (and so their tensors), kept referenced by this thread. Gloo's worker thread
# drops its own reference to a collective after the call has returned; were it the last one, freeing the
# tensors would need the GIL. When the process then exits, the process group's destructor joins that thread
# while holding the GIL, and the two wait for each other forever (pytorch/pytorch#56297, seen here: a 2-process
# run stopped by SIGTERM hung at exit in about 1 of 4 tries). Each collective below goes through _run().
_RECENT_WORK: collections.deque = collections.deque(maxlen=64)


def _run(work) -> None:
    """Wait for an async collective, and keep its handle until 64 newer ones have run."""
    work.wait()
    _RECENT_WORK.append(work)


@dataclass(frozen=True)
class Context:
    rank: int = 0  # this process's index among all processes
    world_size: int = 1  # number of processes
    local_rank: int = 0  # index on this machine (picks the GPU)
    local_world_size: int = 1  # processes on this machine (they share its cores)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context_from_environment() -> Context:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return Context(
        int(os.environ.get("RANK", "0")),
        world_size,
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))),
    )


def init(context: Context, device: torch.device) -> None:
    if context.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def shutdown(context: Context, together: bool) -> None:
    """Leave the process group. `together`: every rank is shutting down at this point (a finished run, or a
    stop all ranks agreed on); a barrier then lets gloo's worker threads finish before the group goes."""
    if context.enabled and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, context: Context, device: torch.device) -> torch.nn.Module:
    if not context.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


@contextlib.contextmanager
def main_first(context: Context):
    """Run the block on rank 0 first, then on the other ranks (e.g. a download into a shared cache).
    If rank 0 fails, the others wait until torchrun ends them."""
    if context.enabled and not context.is_main:
        dist.barrier()
    yield
    if context.enabled and context.is_main:
        dist.barrier()


@contextlib.contextmanager
def main_holds(manager: contextlib.AbstractContextManager, context: Context, device: torch.device):
    """Hold `manager` (e.g. the run directory's lock) on rank 0 alone while the block runs. When rank 0 is
    refused with a DigitlabError, every rank raises at once, so that none waits for the others."""
    with contextlib.ExitStack() as stack:
        main_does(lambda: stack.enter_context(manager), context, device)
        yield


def main_does(action, context: Context, device: torch.device) -> None:
    """Run `action()` on rank 0 alone (say, create the run directory). When it raises a DigitlabError, every
    rank raises at once, so that none goes on to a collective that rank 0 will never join."""
    refusal = None
    if context.is_main:
        try:
            action()
        except DigitlabError as error:
            refusal = error
    if any_rank([refusal is not None], context, device)[0]:
        raise refusal or DigitlabError("rank 0 was refused: its message says why")


def average(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """The mean over ranks (a copy); the tensor itself when training is a single process."""
    if not context.enabled:
        return tensor
    total = tensor.clone()
    _run(dist.all_reduce(total, async_op=True))
    return total / context.world_size


def any_rank(flags: list[bool], context: Context, device: torch.device) -> list[bool]:
    """For each flag, True on every rank when it is true on any (so all ranks stop at the same step)."""
    if not context.enabled:
        return list(flags)
    values = torch.tensor([1.0 if flag else 0.0 for flag in flags], device=device)
    _run(dist.all_reduce(values, op=dist.ReduceOp.MAX, async_op=True))
    return [bool(value > 0) for value in values.tolist()]


def max_in_place(values: torch.Tensor, context: Context) -> None:
    """values = their maximum over the ranks, in place (queued on the stream under NCCL; no host wait)."""
    if context.enabled:
        _run(dist.all_reduce(values, op=dist.ReduceOp.MAX, async_op=True))


def all_equal(value: int, context: Context, device: torch.device) -> bool:
    """Whether every rank passed the same integer."""
    if not context.enabled:
        return True
    low = torch.tensor([value], dtype=torch.int64, device=device)
    high = low.clone()
    _run(dist.all_reduce(low, op=dist.ReduceOp.MIN, async_op=True))
    _run(dist.all_reduce(high, op=dist.ReduceOp.MAX, async_op=True))
    return bool(low.item() == high.item())


def gather(tensors: dict[str, torch.Tensor], context: Context, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Every rank's `tensors` (same names and shapes on all ranks), as CPU tensors indexed by rank."""
    if not context.enabled:
        return [tensors]
    gathered: list[dict[str, torch.Tensor]] = [{} for _ in range(context.world_size)]
    for name in sorted(tensors):
        local = tensors[name].to(device)
        parts = [torch.empty_like(local) for _ in range(context.world_size)]
        _run(dist.all_gather(parts, local, async_op=True))
        for rank, part in enumerate(parts):
            gathered[rank][name] = part.cpu()
    return gathered
