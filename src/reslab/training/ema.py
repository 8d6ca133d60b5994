"""Exponential moving average (EMA) of a model's weights, evaluated alongside the trained model."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """A frozen copy of ``model`` whose floating-point state follows ``decay * ema + (1 - decay) * model``.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates ``n``, so the
    average is not dominated by the random initialisation in short runs. Batch-norm running
    statistics are averaged like the weights; integer buffers (batch counters) are copied.

    Args:
        model: the model being trained (not a ``torch.compile`` wrapper).
        decay: the asymptotic decay per optimiser step, e.g. 0.999.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = float(decay)
        self.updates = 0

    def _pairs(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple]]:
        ema_state = self.module.state_dict()
        float_ema, float_model, other = [], [], []
        for name, value in model.state_dict().items():
            target = ema_state[name]
            if target.is_floating_point():
                float_ema.append(target)
                float_model.append(value.detach())
            else:
                other.append((target, value))
        return float_ema, float_model, other

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average (call after each optimiser step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        float_ema, float_model, other = self._pairs(model)
        torch._foreach_lerp_(float_ema, float_model, 1.0 - decay)
        for target, value in other:
            target.copy_(value)

    def state_dict(self) -> dict:
        """The averaged weights plus the update count (for exact resume)."""
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
