"""The pieces of benchmarks/gpu_speedrun.py that train: SpeedNet (the small fast CNN of MNIST speedruns), one_cycle
(its lr schedule), sync, and Trainer: one model's training step on device-resident data, eager, compiled or replayed
as a CUDA graph, reset in place for each seed.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from digitlab.perf.benchmark_report import log


class SpeedNet(nn.Module):
    """The ~220k-parameter 2-conv net of public MNIST speedruns: two 3x3 convolutions (32, 64 channels), each with
    batch norm, ReLU and 2x2 max-pooling, then a hidden layer of 64. Takes (B, 1, 28, 28)."""

    def __init__(self):
        super().__init__()
        block = lambda cin, cout: [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]  # noqa: E731
        self.layers = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def one_cycle(steps: int, peak: float, warm: float = 0.25) -> torch.Tensor:
    """Each step's lr: linear from peak/10 up to `peak` over the first `warm` share of the steps, then down to 0."""
    x = (torch.arange(steps) + 0.5) / steps
    return torch.where(x < warm, peak / 10 + (peak - peak / 10) * x / warm, peak * (1 - x) / (1 - warm))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    """One model's training step on device-resident data, run eagerly, through torch.compile, or replayed as a CUDA
    graph captured once (warm-up and capture timed as `setup_s`). reset() gives it a seed's fresh weights and
    optimizer state in place, so one capture serves every seed; ran_as says what ran (a failed capture: eager)."""

    def __init__(self, make, images, labels, batch, max_steps, precision, launch, channels_last=False, warmup=3,
                 compile_mode="max-autotune-no-cudagraphs", smoothing=0.0):  # fmt: skip
        self.make, self.images, self.labels, self.batch, self.device = make, images, labels, batch, images.device
        self.memory = torch.channels_last if channels_last else torch.contiguous_format
        self.model = make(0).to(self.device, memory_format=self.memory)  # only 4-d weights change layout
        self.bf16, self.smoothing, self.graph, self.ran_as = precision == "bf16", smoothing, None, launch
        self.done, self.generator = 0, None
        self.order = torch.zeros(max_steps, batch, dtype=torch.long, device=self.device)
        self.lrs = torch.zeros(max_steps, device=self.device)
        self.step_index = torch.zeros(1, dtype=torch.long, device=self.device)
        cuda = self.device.type == "cuda"  # capturable: Adam's step count and lr stay on the device
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=torch.tensor(0.0, device=self.device),
                                          betas=(0.9, 0.99), fused=True, capturable=cuda)  # fmt: skip
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.forward = torch.compile(self.model, mode=compile_mode) if launch == "compile" else self.model
        sync(self.device)
        start = time.perf_counter()
        if launch == "graph" and not cuda:
            self.ran_as = "eager (CUDA graphs need CUDA)"
        elif launch == "graph":
            try:
                self._capture(warmup)
            except RuntimeError as error:  # an op that cannot be captured: the record runs eagerly, and says so
                self.graph, self.ran_as = None, f"eager (capture failed: {str(error).splitlines()[0][:120]})"
                log(f"gpu_speedrun: {self.ran_as}")
        self._warm(warmup, self.graph.replay if self.graph else self._step)  # a graph's first replay uploads it
        self.shuffle(1)  # the shuffle's kernels loaded before the clock too
        sync(self.device)
        self.setup_s = time.perf_counter() - start

    def _step(self) -> None:
        """One step, all on the device: batch `step_index` of `order`, its lr from `lrs`, forward, backward, Adam."""
        rows = self.order.index_select(0, self.step_index).view(-1)
        self.lr.copy_(self.lrs.index_select(0, self.step_index).view(()))
        self.optimizer.zero_grad(set_to_none=True)  # in a capture: backward writes fresh gradients on each replay
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            logits = self.forward(self.images.index_select(0, rows))
            loss = nn.functional.cross_entropy(logits.float(), self.labels.index_select(0, rows),
                                               label_smoothing=self.smoothing)  # fmt: skip
        loss.backward()
        self.optimizer.step()
        self.step_index.add_(1)

    def _warm(self, steps: int, step) -> None:
        """Untimed steps, each on batch 0 (so any max_steps will do); reset() undoes what they learn."""
        for _ in range(steps):
            self.step_index.zero_()
            step()

    def _capture(self, warmup: int) -> None:
        """PyTorch's whole-network capture: warm up on a side stream (cuDNN picks its algorithms, Adam makes its
        state), then record one step."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self._warm(warmup, self._step)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()

    def reset(self, seed: int, lrs: torch.Tensor) -> None:
        """Seed `seed`'s initial weights (built on the CPU: the same on any device), Adam's state zeroed, step 0."""
        self.model.load_state_dict(self.make(seed).state_dict())  # copies in place: the graph's tensors stay
        for state in self.optimizer.state.values():
            for value in state.values():
                value.zero_()
        self.lrs.zero_()
        self.lrs[: len(lrs)].copy_(lrs)
        self.step_index.zero_()
        self.done, self.generator = 0, torch.Generator(self.device).manual_seed(seed)

    def shuffle(self, epochs: int) -> torch.Tensor:
        """`epochs` random orders of the examples as rows of `batch` indices (an epoch's last partial batch dropped)."""
        per_epoch = len(self.images) // self.batch
        keys = torch.rand(epochs, len(self.images), device=self.device, generator=self.generator)
        return keys.argsort(dim=1)[:, : per_epoch * self.batch].reshape(-1, self.batch)

    def train(self, steps: int) -> float:
        """`steps` steps on from where the last call stopped, timed: the shuffle, the steps, a synchronisation."""
        sync(self.device)
        start = time.perf_counter()
        order = self.shuffle(math.ceil(steps / (len(self.images) // self.batch)))
        self.order[self.done : self.done + steps].copy_(order[:steps])
        for _ in range(steps):
            self.graph.replay() if self.graph else self._step()
        sync(self.device)
        self.done += steps  # counted on the host too: reading step_index would synchronise
        return time.perf_counter() - start

    @torch.no_grad()
    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """The share of `images` classified right, in fp32 whatever the training precision (off the clock)."""
        self.model.eval()
        right = sum((self.model(x).argmax(1) == y).sum() for x, y in zip(images.split(10_000), labels.split(10_000)))
        self.model.train()
        return float(right) / len(labels)
