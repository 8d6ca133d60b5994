"""``create_model(name, pretrained=...)``: build a registered network and load published or local weights
into it, adapting the classifier and the input convolution as timm does, and proving nothing is missed.

The weights are loaded strictly into a network built for *their* class and channel counts; then a
different ``num_classes`` replaces the classifier (logged), and a different ``in_chans`` adapts the first
convolution (1 channel: the sum over RGB; other counts: RGB repeated, rescaled by 3 / C).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .layouts import Loaded, describe_mismatch, read_weights
from .preprocessing import channel_stats_for
from .registry import WeightsEntry, get_weights

logger = logging.getLogger("reslab.weights")


#: file name endings of weight files: a name with one of them is a path, even where the file is missing
WEIGHT_FILE_SUFFIXES = (
    ".pth",
    ".pt",
    ".th",
    ".tar",
    ".bin",
    ".ckpt",
    ".h5",
    ".hdf5",
    ".keras",
    ".safetensors",
    ".pkl",
    ".npz",
)


def weights_source(model: str, pretrained: bool | str | os.PathLike[str]) -> tuple[str, bool | str]:
    """Where ``pretrained`` points, without reading or fetching anything: ``("entry", True | TAG)`` for the
    registry (``True``: the model's default; a tag, or this model's full ``MODEL.TAG``), ``("file", PATH)``
    for an existing path, a value with a directory part, or a name ending like a weight file (``.pth``,
    ``.h5``, ...). ``"resnet50.tv_in1k"`` has a suffix too: a name is never a path because of its dot alone.

    Raises:
        ConfigError: an empty value, or ``MODEL.TAG`` of another model.
    """
    if pretrained is True:
        return "entry", True
    if isinstance(pretrained, os.PathLike):
        return "file", str(Path(pretrained).expanduser())
    if not isinstance(pretrained, str) or not pretrained.strip():
        raise ConfigError(f"pretrained must be True, a weights tag or a file path, got {pretrained!r}")
    text = pretrained.strip()
    tag = text.lower()
    own = tag.startswith(f"{model}.")
    if (
        Path(text).expanduser().exists()
        or os.sep in text
        or "/" in text
        or (not own and tag.endswith(WEIGHT_FILE_SUFFIXES))
    ):
        return "file", str(Path(text).expanduser())
    if own:
        return "entry", tag[len(model) + 1 :]
    if "." in tag:
        raise ConfigError(
            f"pretrained={text!r} names weights of another model; {model} takes its own (`reslab weights list {model}`)"
        )
    return "entry", tag


def resolve_pretrained(model: str, pretrained: bool | str | os.PathLike[str]) -> tuple[WeightsEntry | None, Path]:
    """``pretrained`` (see :func:`weights_source`) as (registry entry or None, local file); a registry entry's
    file is fetched into the cache (hash-checked) where it is not there yet.

    Raises:
        ConfigError: unknown weights. CheckpointError: a missing file, or a directory.
        DataError: the file cannot be downloaded (offline: the message says where to put it).
    """
    from .hub import fetch

    kind, value = weights_source(model, pretrained)
    if kind == "file":
        path = Path(value)
        if path.is_dir():
            raise CheckpointError(f"pretrained weights {path} is a directory; give the weights file in it")
        if not path.is_file():
            raise CheckpointError(f"pretrained weights file {path} not found")
        return None, path
    entry = get_weights(model, value)
    return entry, fetch(entry)


def pretrained_preprocessing(
    model: str, pretrained: bool | str | os.PathLike[str]
) -> tuple[dict[str, Any] | None, str]:
    """The preprocessing ``pretrained`` weights expect (a :class:`Preprocessing` dict, or None where a file
    says nothing) and the weights' name (``MODEL.TAG`` or the path), known before anything is built or
    fetched: a registry entry's, or what a file records about itself.

    Raises:
        ConfigError: unknown weights. CheckpointError: a missing or unreadable file.
    """
    kind, value = weights_source(model, pretrained)
    if kind == "entry":
        entry = get_weights(model, value)
        return entry.preprocessing.to_dict(), entry.name
    return read_weights(value).meta.get("preprocessing"), str(value)


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


def create_pretrained(
    name: str,
    pretrained: bool | str | os.PathLike[str],
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build ``name`` with ``pretrained`` weights (see :func:`resolve_pretrained`), then adapt the head and
    the input channels. Sets ``model.pretrained_cfg`` (see :func:`pretrained_cfg`).

    Raises:
        ConfigError: unknown weights, or an override that contradicts what the weights need.
        CheckpointError: a file that is missing, in no layout, or whose weights do not fit the network
            (one line naming the first differing keys and shapes) -- never a partial load.
    """
    from ..models.registry import create_model, get_model_entry

    model_entry = get_model_entry(name)
    entry, path = resolve_pretrained(model_entry.name, pretrained)
    loaded = read_weights(path, layout=entry.layout if entry else None)
    source = entry.name if entry else str(path)
    saved_model = loaded.meta.get("model_name")
    if saved_model and saved_model != model_entry.name:
        raise CheckpointError(f"{source} holds {saved_model} weights, not {model_entry.name}")
    needed = {**(entry.model_args if entry else {}), **loaded.model_args}
    for key, value in overrides.items():
        if key in needed and needed[key] != value:
            raise ConfigError(f"{source} needs {key}={needed[key]!r}; the override {key}={value!r} contradicts it")
    args = {**needed, **overrides}

    # the network the weights were trained as: their class count and input channels
    with torch.device("meta"):  # only its key names and shapes are needed: no memory, no initialisation cost
        probe = create_model(model_entry.name, **args)
    src_classes, src_chans = _source_shape(loaded, probe, entry)
    model = create_model(model_entry.name, num_classes=src_classes, in_chans=src_chans, **args)
    if "arch_revision" in loaded.meta and hasattr(model, "check_weights_revision"):  # reslab's own checkpoints
        model.check_weights_revision(loaded.meta["arch_revision"], source)
    _load_strict(model, loaded, source)

    want_classes = src_classes if num_classes is None else num_classes
    if want_classes != src_classes:
        logger.info("%s: classifier %d -> %d classes (new, freshly initialised)", source, src_classes, want_classes)
        model.reset_classifier(want_classes)
    want_chans = src_chans if in_chans is None else in_chans
    if want_chans != src_chans:
        _adapt_input(model, want_chans)
        logger.info("%s: first convolution adapted from %d to %d input channels", source, src_chans, want_chans)
    model.pretrained_cfg = pretrained_cfg(entry, loaded, source, args, src_classes, want_classes, src_chans, want_chans)
    model.model_args = args
    return model


def _source_shape(loaded: Loaded, probe: nn.Module, entry: WeightsEntry | None) -> tuple[int, int]:
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


def _load_strict(model: nn.Module, loaded: Loaded, source: str) -> None:
    if loaded.convert is not None:
        loaded.convert(model)
        return
    try:
        model.load_state_dict(loaded.state_dict)
    except RuntimeError as e:
        detail = describe_mismatch(model, loaded.state_dict) or str(e).strip().splitlines()[0][:200]
        name = getattr(model, "model_name", type(model).__name__)
        raise CheckpointError(f"{source} ({loaded.layout} layout) does not fit {name}: {detail}") from None


def _adapt_input(model: nn.Module, in_chans: int) -> None:
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
