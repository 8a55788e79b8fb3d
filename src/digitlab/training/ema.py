"""An exponential moving average of a model's weights, evaluated and saved beside the raw weights.

After every optimizer step: average = decay_t * average + (1 - decay_t) * weights, for every parameter and
floating-point buffer (batch-norm running statistics too, as timm's ModelEmaV2); integer buffers are copied.
decay_t = min(decay, (1 + t) / (10 + t)) at update t (0-based), as TensorFlow's ExponentialMovingAverage
with num_updates: early on, when the weights move most, the average follows them closely instead of
remembering the random initialisation for thousands of steps.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.updates = 0  # updates taken so far: checkpointed, since decay_t depends on it
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    def decay_at(self, update: int) -> float:
        return min(self.decay, (1 + update) / (10 + update))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        decay = self.decay_at(self.updates)
        averaged, current = self.model.state_dict(), model.state_dict()
        for name, value in averaged.items():
            if value.is_floating_point():
                value.lerp_(current[name].detach(), 1 - decay)
            else:
                value.copy_(current[name])
        self.updates += 1

    def state(self) -> dict[str, torch.Tensor]:
        return {name: value for name, value in self.model.state_dict().items()}

    def load(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        self.model.load_state_dict(tensors)
        self.updates = updates
