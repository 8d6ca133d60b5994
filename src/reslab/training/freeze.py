"""Freezing part of a network for fine-tuning, and its parameter split for discriminative learning rates.

``freeze="backbone"`` freezes everything but the classifier (``model.get_classifier()``);
``freeze="stages:N"`` freezes the stem and the first N stages (``model.feature_info``'s first N modules,
with every module registered before them). Frozen parameters get ``requires_grad=False`` -- so autograd
records nothing below the first trainable layer and the backward pass stops there -- and frozen modules
stay in eval mode (BatchNorm running statistics untouched, as Keras's transfer-learning guide does) even
when the trainer calls ``model.train()``.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field

from torch import nn

from ..errors import ConfigError

FREEZE_MODES = ("none", "backbone", "stages:N")
_STAGES = re.compile(r"^stages:(\d+)$")


def parse_freeze(value: object) -> tuple[str, int]:
    """``"none"`` -> ("none", 0); ``"backbone"`` -> ("backbone", 0); ``"stages:N"`` -> ("stages", N).

    Raises:
        ConfigError: anything else (one line naming the accepted forms).
    """
    text = value.strip().lower() if isinstance(value, str) else value
    if text in ("none", "backbone"):
        return str(text), 0
    match = _STAGES.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ConfigError(f"freeze must be none, backbone or stages:N (N >= 1, e.g. stages:2), got {value!r}")
    return "stages", int(match.group(1))


@dataclass
class FreezeInfo:
    """What :func:`freeze_model` froze: module names, parameter counts."""

    mode: str
    frozen_modules: list[str] = field(default_factory=list)
    frozen_params: int = 0
    trainable_params: int = 0

    def describe(self) -> str:
        total = self.frozen_params + self.trainable_params
        return (
            f"freeze {self.mode}: {self.frozen_params:,} of {total:,} parameters frozen (eval mode, no "
            f"gradients), {self.trainable_params:,} trained"
        )


def classifier_ids(model: nn.Module) -> set[int]:
    """``id`` of every parameter of the model's classifier (``model.get_classifier()``).

    Raises:
        ConfigError: a network without ``get_classifier``.
    """
    get = getattr(model, "get_classifier", None)
    if get is None:
        raise ConfigError(f"{type(model).__name__} has no get_classifier(): its head cannot be told from its backbone")
    return {id(p) for p in get().parameters()}


def _units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules that own parameters or buffers themselves, in registration (= forward) order."""

    def owns(m: nn.Module) -> bool:
        return next(m.parameters(recurse=False), None) is not None or next(m.buffers(recurse=False), None) is not None

    return [(name, m) for name, m in model.named_modules() if owns(m)]


def _frozen_units(model: nn.Module, mode: str, stages: int) -> list[tuple[str, nn.Module]]:
    head = classifier_ids(model)
    units = [(n, m) for n, m in _units(model) if not any(id(p) in head for p in m.parameters(recurse=False))]
    if mode == "backbone":
        return units
    info = getattr(model, "feature_info", None) or []
    if stages > len(info):
        name = getattr(model, "model_name", type(model).__name__)
        raise ConfigError(f"freeze=stages:{stages}: {name} has {len(info)} stages; use stages:1..{len(info)}")
    names = [n for n, _ in model.named_modules()]
    last = info[stages - 1]["module"]
    if last not in names:
        raise ConfigError(f"freeze=stages:{stages}: feature_info names module {last!r}, which the network lacks")
    # everything registered up to the end of that stage module (its last descendant)
    end = max(i for i, n in enumerate(names) if n == last or n.startswith(last + "."))
    position = {n: i for i, n in enumerate(names)}
    return [(n, m) for n, m in units if position[n] <= end]


def freeze_model(model: nn.Module, freeze: str) -> FreezeInfo:
    """Freeze part of ``model`` in place (see the module docstring) and keep it frozen through ``train()``.

    Args:
        model: a reslab network (``get_classifier``, ``feature_info``).
        freeze: ``"none"``, ``"backbone"`` or ``"stages:N"``.

    Returns:
        :class:`FreezeInfo`.

    Raises:
        ConfigError: a bad ``freeze`` value, or more stages than the network has.
    """
    mode, stages = parse_freeze(freeze)
    info = FreezeInfo(freeze if mode != "stages" else f"stages:{stages}")
    frozen = [] if mode == "none" else _frozen_units(model, mode, stages)
    for _, module in frozen:
        for p in module.parameters(recurse=False):
            p.requires_grad_(False)
    info.frozen_modules = [n for n, _ in frozen]
    info.frozen_params = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    info.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if frozen:
        model.frozen_modules = tuple(info.frozen_modules)
        if not getattr(model, "_reslab_train_keeps_frozen", False):
            model.train = types.MethodType(_train_keeping_frozen, model)  # type: ignore[method-assign]
            model._reslab_train_keeps_frozen = True
        model.train(model.training)
    return info


def _train_keeping_frozen(self: nn.Module, mode: bool = True) -> nn.Module:
    """``nn.Module.train``, after which the frozen modules are put back in eval mode."""
    nn.Module.train(self, mode)
    for name in getattr(self, "frozen_modules", ()):
        self.get_submodule(name).eval()
    return self


def split_head_backbone(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The trainable parameters of the classifier, and those of the rest (the backbone)."""
    head = classifier_ids(model)
    params = [p for p in model.parameters() if p.requires_grad]
    return [p for p in params if id(p) in head], [p for p in params if id(p) not in head]
