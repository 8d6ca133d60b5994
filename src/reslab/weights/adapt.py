"""Putting read weights into a built network: the strict load, the new classifier, the adapted first
convolution and the record of what was loaded (``pretrained_cfg``), as timm's ``load_pretrained`` does.

:func:`reslab.factory.create_model` drives these: the weights are loaded strictly into a network built for
*their* class and channel counts (:func:`source_shape`); then a different ``num_classes`` replaces the
classifier, and a different ``in_chans`` adapts the first convolution (1 channel: the sum over RGB; other
counts: RGB repeated, rescaled by 3 / C).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .layouts import Loaded, describe_mismatch
from .preprocessing import channel_stats_for
from .registry import WeightsEntry

logger = logging.getLogger("reslab.weights")


def classifier_keys(model: nn.Module) -> list[str]:
    """The state-dict keys of ``model``'s classifier (``fc.weight``, ``classifier.6.bias``, ...)."""
    head = model.get_classifier()
    ids = {id(p) for p in head.parameters()}
    return [k for k, p in model.named_parameters() if id(p) in ids]


def first_conv_key(model: nn.Module) -> str:
    """The state-dict key of the weight of the first convolution (the one that sees the image)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return f"{name}.weight"
    raise ConfigError(f"{type(model).__name__} has no convolution")


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A first-convolution weight (O, C, kH, kW) for ``in_chans`` inputs (timm's rule): 1 channel sums
    the channels; more repeats them and rescales by C / in_chans so activations keep their scale."""
    c = weight.shape[1]
    if in_chans == c:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(in_chans / c)
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (c / in_chans)


def source_shape(loaded: Loaded, probe: nn.Module, entry: WeightsEntry | None) -> tuple[int, int]:
    classes = loaded.meta.get("num_classes")
    chans = loaded.meta.get("in_chans")
    sd = loaded.state_dict
    if sd is not None:
        keys = [k for k in classifier_keys(probe) if k.endswith("weight")]
        if classes is None:
            classes = int(sd[keys[0]].shape[0]) if keys and keys[0] in sd else 0
        conv = first_conv_key(probe)
        if chans is None and conv in sd:
            chans = int(sd[conv].shape[1])
    if classes is None and entry is not None:
        from .classes import class_names

        classes = len(class_names(entry.classes))
    return int(classes if classes is not None else probe.num_classes), int(chans or probe.in_chans)


def load_strict(model: nn.Module, loaded: Loaded, source: str) -> None:
    if loaded.convert is not None:
        loaded.convert(model)
        return
    try:
        model.load_state_dict(loaded.state_dict)
    except RuntimeError as e:
        detail = describe_mismatch(model, loaded.state_dict) or str(e).strip().splitlines()[0][:200]
        name = getattr(model, "model_name", type(model).__name__)
        raise CheckpointError(f"{source} ({loaded.layout} layout) does not fit {name}: {detail}") from None


def adapt_input(model: nn.Module, in_chans: int) -> None:
    key = first_conv_key(model)
    conv = model.get_submodule(key.rsplit(".", 1)[0])
    new = nn.Conv2d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv(conv.weight, in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    parent_name, _, attr = key.rsplit(".", 1)[0].rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new.to(conv.weight.device))
    model.in_chans = in_chans


def pretrained_cfg(
    entry: WeightsEntry | None,
    loaded: Loaded,
    source: str,
    args: dict[str, Any],
    src_classes: int,
    num_classes: int,
    src_chans: int,
    in_chans: int,
) -> dict[str, Any]:
    """What a pretrained model knows of its weights (plain types): ``source`` (``MODEL.TAG`` or the file),
    ``layout``, ``preprocessing`` (a :class:`Preprocessing` dict, or None where the file says nothing),
    ``class_names`` (None after the classifier was replaced, or where unknown), ``model_args``,
    ``num_classes`` (the weights') and ``head_replaced``, ``in_chans`` (the weights') and ``input_adapted``."""
    prep = entry.preprocessing.to_dict() if entry else loaded.meta.get("preprocessing")
    names = None
    if entry is not None:
        from .classes import class_names

        names = class_names(entry.classes)
        if len(names) != src_classes:  # a wrong class list would mislabel every prediction, silently
            raise CheckpointError(
                f"{source}: its class list {entry.classes!r} has {len(names)} class names but the weights' "
                f"classifier has {src_classes} outputs"
            )
    elif loaded.meta.get("class_names"):
        names = list(loaded.meta["class_names"])
    if prep is not None and in_chans != src_chans:
        mean, std = channel_stats_for(prep["mean"], prep["std"], in_chans)
        prep = {**prep, "input_size": [in_chans, *prep["input_size"][1:]], "mean": mean, "std": std}
    return {
        "source": source,
        "layout": loaded.layout,
        "preprocessing": prep,
        "class_names": names if num_classes == src_classes else None,
        "model_args": dict(args),
        "num_classes": src_classes,
        "head_replaced": num_classes != src_classes,
        "in_chans": src_chans,
        "input_adapted": in_chans != src_chans,
    }
