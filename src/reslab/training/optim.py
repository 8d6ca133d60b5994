"""Optimisers (SGD with momentum / Nesterov, Adam, AdamW) and learning-rate schedules.

Schedules are functions of the iteration, not the epoch, so the same recipe gives the same curve at
any batch size or data-set size; they run as a ``LambdaLR`` stepped after every optimiser step.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .config import TrainConfig


def parameter_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool = True) -> list[dict]:
    """Parameter groups for an optimiser: with ``decay_norm_and_bias=False`` the normalisation
    parameters and biases (every parameter with fewer than two dimensions) get no weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias or weight_decay == 0:
        return [{"params": params, "weight_decay": weight_decay}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _split_decay(params: list[nn.Parameter], weight_decay: float, decay_norm_and_bias: bool, **extra) -> list[dict]:
    if decay_norm_and_bias or weight_decay == 0:
        return [{"params": params, "weight_decay": weight_decay, **extra}] if params else []
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay, **extra},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0, **extra},
    ]
    return [g for g in groups if g["params"]]


def discriminative_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Parameter groups with the head at ``head_lr`` (default ``lr``) and the backbone at
    ``head_lr x backbone_lr_scale``, each split by the no-weight-decay-on-BN/bias rule; the head's groups
    come first (the trainer logs the first group's rate). Frozen parameters are left out.

    Raises:
        ConfigError: a network without ``get_classifier`` (its head cannot be told apart).
    """
    from .freeze import split_head_backbone

    head, backbone = split_head_backbone(model)
    head_lr = config.head_lr if config.head_lr is not None else config.lr
    wd, rule = config.weight_decay, config.decay_norm_and_bias
    return _split_decay(head, wd, rule, lr=head_lr, name="head") + _split_decay(
        backbone, wd, rule, lr=head_lr * config.backbone_lr_scale, name="backbone"
    )


def optimizer_implementation(device: torch.device | str) -> dict[str, bool]:
    """The keyword that picks torch's fastest optimiser implementation on ``device``: ``fused=True`` on
    CUDA (one kernel for every parameter's update; it also reads the step count and, under fp16, the
    gradient scaler's inf check on the GPU, so the step never waits for the host), ``foreach=True``
    elsewhere (the same arithmetic as torch's per-parameter loop, bit for bit, about 2x faster on the CPU;
    torch's fused CPU kernels round differently, so CPU results stay what they were)."""
    return {"fused": True} if torch.device(device).type == "cuda" else {"foreach": True}


def build_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device | str | None = None
) -> torch.optim.Optimizer:
    """The optimiser the configuration names, over ``model``'s trainable parameters (frozen ones are left
    out); with ``head_lr`` or ``backbone_lr_scale`` set, the head and the backbone get their own rates
    (:func:`discriminative_groups`); schedules scale every group by the same factor. The implementation
    (fused on CUDA, foreach elsewhere: :func:`optimizer_implementation`) follows ``device``, by default
    the device of the model's parameters.

    Raises:
        ConfigError: an unknown optimiser name or a model without trainable parameters.
    """
    if config.head_lr is not None or config.backbone_lr_scale != 1.0:
        groups = discriminative_groups(model, config)
    else:
        groups = parameter_groups(model, config.weight_decay, config.decay_norm_and_bias)
    if not any(g["params"] for g in groups):
        raise ConfigError("the model has no trainable parameters")
    if device is None:
        device = next(p for g in groups for p in g["params"]).device
    impl = optimizer_implementation(device)
    name = config.optimizer
    if name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, **impl)
    if name == "adam":
        # Adam's weight_decay is L2 added to the gradient (as torch.optim.Adam); AdamW decouples it.
        return torch.optim.Adam(groups, lr=config.lr, betas=tuple(config.betas), **impl)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas), **impl)
    raise ConfigError(f"unknown optimizer {name!r} (choose sgd, adam or adamw)")


class LRSchedule:
    """Learning-rate factor (multiplying the base ``lr``) as a function of the iteration ``it``.

    Kinds (``total`` iterations in the run):
      - ``constant``: 1.
      - ``multistep``: ``gamma ** (milestones passed)``; milestones are iterations (the ResNet paper
        divides by 10 at 32k and 48k of 64k iterations, i.e. 50% and 75%).
      - ``cosine``: half a cosine from 1 to 0 over the run (Loshchilov & Hutter, SGDR).
      - ``onecycle``: a linear rise from ``1/div`` to 1 over the first ``pct`` of the run, then a
        cosine decay to 0 (Smith & Topin, super-convergence; momentum is not cycled).
    A linear warm-up of ``warmup`` iterations multiplies any of them by ``(it + 1) / warmup`` at
    first, so the first step already trains and the schedule is reached at the end of the warm-up. A
    constant warm-up (``warmup_factor``, e.g. 0.1 for the ResNet paper's 0.01 before 0.1) replaces the
    factor by ``warmup_factor`` for the first ``warmup`` iterations, then hands over to the schedule.

    Only plain numbers are attributes, so a ``LambdaLR``'s state dict stays loadable with
    ``torch.load(weights_only=True)``.
    """

    def __init__(
        self,
        kind: str,
        total: int,
        *,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        warmup: int = 0,
        warmup_factor: float | None = None,
        pct: float = 0.25,
        div: float = 25.0,
    ):
        if kind not in ("constant", "multistep", "cosine", "onecycle"):
            raise ConfigError(f"unknown schedule {kind!r} (choose multistep, cosine, onecycle or constant)")
        self.kind = kind
        self.total = max(int(total), 1)
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.warmup = int(warmup)
        self.warmup_factor = None if warmup_factor is None else float(warmup_factor)
        self.pct = float(pct)
        self.div = float(div)

    def main(self, it: int) -> float:
        """The schedule without warm-up."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "multistep":
            return self.gamma ** bisect.bisect_right(self.milestones, it)
        if self.kind == "cosine":
            t = min(it, self.total) / self.total
            return 0.5 * (1.0 + math.cos(math.pi * t))
        up = max(int(round(self.pct * self.total)), 1)  # onecycle
        if it < up:
            start = 1.0 / self.div
            return start + (1.0 - start) * it / up
        t = min(it - up, self.total - up) / max(self.total - up, 1)
        return 0.5 * (1.0 + math.cos(math.pi * t))

    def __call__(self, it: int) -> float:
        if it < self.warmup and self.warmup_factor is not None:
            return self.warmup_factor
        factor = self.main(it)
        if it < self.warmup:
            factor *= (it + 1) / self.warmup
        return factor


def build_schedule(config: TrainConfig, steps_per_epoch: int) -> LRSchedule:
    """The configuration's schedule in iterations (epochs x ``steps_per_epoch``)."""
    total = config.epochs * steps_per_epoch
    milestones: Iterable[float] = config.milestone_epochs()
    return LRSchedule(
        config.schedule,
        total,
        milestones=[round(m * steps_per_epoch) for m in milestones],
        gamma=config.gamma,
        warmup=round(config.warmup_epochs * steps_per_epoch),
        warmup_factor=None if config.warmup_lr is None else config.warmup_lr / config.lr,
        pct=config.onecycle_pct,
        div=config.onecycle_div,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`build_schedule`; call ``.step()`` after every optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, build_schedule(config, steps_per_epoch))


#: the param-group keys that choose torch's implementation, not the arithmetic
IMPLEMENTATION_KEYS = ("fused", "foreach")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """``optimizer.load_state_dict(state)``, keeping ``optimizer``'s implementation (fused / foreach).

    torch's ``load_state_dict`` takes every param-group setting from the saved state, so a checkpoint
    written on CUDA (fused) would resume on the CPU with the fused kernels, and a CPU one on CUDA without
    them; the saved flags are replaced by this optimiser's before loading, so that torch also moves the
    step counters where this implementation wants them (fused: float32 on the parameters' device).
    """
    saved, current = state.get("param_groups", []), optimizer.param_groups
    if len(saved) == len(current):  # else torch's own error names the mismatch
        groups = [{**s, **{k: c[k] for k in IMPLEMENTATION_KEYS if k in c}} for s, c in zip(saved, current)]
        state = {**state, "param_groups": groups}
    optimizer.load_state_dict(state)
