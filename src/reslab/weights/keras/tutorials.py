"""The tutorials' own Keras weight files -> the ``tutorial_*`` models, matched by kind and creation order.

The tutorials' Keras code names almost nothing, so its files carry auto names (``conv2d_3``,
``batch_normalization_7``, ``dense_1``) whose numbers are Keras's per-class creation counters, while the
files' own order is ``model.layers`` order -- which, in a functional model such as tutorial 004's GoogLeNet,
is the graph's depth order, not the code's (three (1, 1, 192, 64) kernels swap places there: shapes cannot
tell). So each kind of layer (convolutions, batch norms, dense layers, DenseNet's Scale layers) is put in
creation order -- by the auto names' counters where every name of that kind is an auto name, else in the
file's order (DenseNet names its layers, in code order) -- and the k-th of a kind goes into the k-th reslab
module of that kind, in the order the reslab model registers them (which follows the tutorial's code).
Every pair's shape is checked; a file that does not fit is refused in one line naming the layer and both
shapes, before anything is copied.

Layouts: a Conv2D kernel is (kh, kw, in, out) (PyTorch: out, in, kh, kw); a Dense kernel (in, out); a Dense
after a ``Flatten`` of a convolutional map reads it in (h, w, c) order, so its rows are reordered to
PyTorch's (c, h, w); BatchNorm's gamma, beta, moving mean / variance (its epsilon from a full-model file's
config, else the model's own: the tutorial's, which the ``tutorial_*`` models are built with).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError
from ...models.layers import Scale
from .common import KerasRecord

#: the tutorial models whose weights come from the tutorials' Keras code
TUTORIAL_KERAS_MODELS = (
    "tutorial_resnet18",
    "tutorial_lenet",
    "tutorial_alexnet",
    "tutorial_zfnet",
    "tutorial_vgg16",
    "tutorial_googlenet",
    "tutorial_resnet50",
    "tutorial_densenet121",
)
#: each kind of layer: the Keras class's auto-name stem, the reslab module type, words for messages
KINDS = {
    "conv": ("conv2d", nn.Conv2d, "convolution"),
    "bn": ("batch_normalization", nn.BatchNorm2d, "batch norm"),
    "dense": ("dense", nn.Linear, "dense layer"),
    "scale": ("scale", Scale, "Scale layer"),
}


def kind_of(record: KerasRecord) -> str | None:
    """``conv``, ``bn``, ``dense`` or ``scale`` from the arrays' shapes (None: a layer of no known kind)."""
    arrays = record.arrays
    if arrays[0].ndim == 4 and len(arrays) <= 2:
        return "conv"
    if arrays[0].ndim == 2 and len(arrays) <= 2:
        return "dense"
    if all(a.ndim == 1 for a in arrays):
        return {4: "bn", 2: "scale"}.get(len(arrays))
    return None


def in_creation_order(records: list[KerasRecord], source: str) -> dict[str, list[KerasRecord]]:
    """The records of each kind in the order the Keras code created them (see the module docstring).

    Raises:
        CheckpointError: a layer of no known kind (naming it and its array shapes).
    """
    by_kind: dict[str, list[KerasRecord]] = {k: [] for k in KINDS}
    for record in records:
        kind = kind_of(record)
        if kind is None:
            shapes = ", ".join("x".join(map(str, a.shape)) for a in record.arrays)
            raise CheckpointError(f"{source}: Keras layer {record.name} ({shapes}) is of no kind reslab maps")
        by_kind[kind].append(record)
    for kind, items in by_kind.items():
        stem = KINDS[kind][0]
        counters = [re.fullmatch(rf"{stem}(?:_(\d+))?", r.name) for r in items]
        if items and all(counters):
            items.sort(key=lambda r: int(re.fullmatch(rf"{stem}(?:_(\d+))?", r.name).group(1) or 0))
        else:
            items.sort(key=lambda r: r.position)
    return by_kind


def file_shape(records: list[KerasRecord], source: str | Path) -> dict[str, int]:
    """The class count (the last dense layer's outputs; 0 without one) and input channels (the first
    convolution's) of a file, in creation order."""
    by_kind = in_creation_order(records, str(source))
    shape = {"num_classes": int(by_kind["dense"][-1].arrays[0].shape[-1]) if by_kind["dense"] else 0}
    if by_kind["conv"]:
        shape["in_chans"] = int(by_kind["conv"][0].arrays[0].shape[2])
    return shape


def _modules(model: nn.Module, kind: str) -> list[tuple[str, nn.Module]]:
    cls = KINDS[kind][1]
    return [(name, m) for name, m in model.named_modules() if isinstance(m, cls)]


def _describe(a: np.ndarray) -> str:
    return "x".join(map(str, a.shape))


def _flatten_map(model: nn.Module) -> tuple[int, int, int] | None:
    """(C, H, W) of the map the first dense layer reads through a flatten, or None where it reads pooled
    features (C x 1 x 1): one forward pass of the features on a zero image at the model's input size."""
    from ...models import get_model_entry

    linear = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    widest = max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=0)
    if linear is None or linear.in_features <= widest:  # no spatial map is flattened into it
        return None
    _, h, w = get_model_entry(model.model_name).input_size
    try:
        with torch.no_grad():
            x = model.forward_features(torch.zeros(1, int(model.in_chans), h, w))
            pool = getattr(model, "avgpool", None)
            x = pool(x) if isinstance(pool, nn.Module) else x
    except (RuntimeError, ValueError):  # a network the file does not fit: the shape checks will say how
        return None
    _, fc, fh, fw = x.shape
    return (int(fc), int(fh), int(fw)) if fh * fw > 1 and fc * fh * fw == linear.in_features else None


def convert_by_creation_order(model: nn.Module, records: list[KerasRecord], source: str) -> None:
    """Copy a tutorial's Keras weights (``records`` of its file) into ``model`` (see the module docstring).

    Raises:
        CheckpointError: another number of layers of a kind than the model has, or a layer whose shape does
            not fit its place (one line: the Keras layer, where the file keeps it, the reslab module, both
            shapes). Nothing is copied then.
    """
    name = getattr(model, "model_name", type(model).__name__)
    by_kind = in_creation_order(records, source)
    flat = _flatten_map(model)
    plan: list[tuple[torch.Tensor, np.ndarray]] = []
    eps: list[tuple[nn.BatchNorm2d, float]] = []
    for kind, items in by_kind.items():
        modules = _modules(model, kind)
        words = KINDS[kind][2]
        if len(items) != len(modules):
            extra = items[len(modules)] if len(items) > len(modules) else None
            more = f" (the first extra: {extra.name} at {extra.where})" if extra is not None else ""
            raise CheckpointError(
                f"{source} has {len(items)} Keras {words}s, {name} has {len(modules)}{more}: "
                f"not the tutorial's {name.removeprefix('tutorial_')}"
            )
        for index, (record, (module_name, module)) in enumerate(zip(items, modules)):
            arrays = record.arrays
            if kind == "conv":
                pairs = [(module.weight, arrays[0].transpose(3, 2, 0, 1))]
                if (module.bias is None) != (len(arrays) == 1):
                    has = "no bias" if len(arrays) == 1 else "a bias"
                    raise CheckpointError(
                        f"{source}: Keras layer {record.name} ({record.where}) has {has}, {name}'s {module_name} "
                        f"{'has' if module.bias is not None else 'has none'}"
                    )
            elif kind == "dense":
                kernel = arrays[0]
                if index == 0 and flat is not None:
                    c, h, w = flat
                    if kernel.shape[0] == c * h * w:
                        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
                pairs = [(module.weight, kernel.T)]
            elif kind == "bn":
                pairs = list(zip((module.weight, module.bias, module.running_mean, module.running_var), arrays))
                if "epsilon" in record.config:
                    eps.append((module, float(record.config["epsilon"])))
            else:
                pairs = list(zip((module.weight, module.bias), arrays))
            if kind in ("conv", "dense") and len(arrays) == 2:
                pairs.append((module.bias, arrays[1]))
            for dst, src in pairs:
                if tuple(dst.shape) != tuple(src.shape):
                    theirs = ", ".join(_describe(a) for a in arrays)
                    raise CheckpointError(
                        f"{source}: Keras layer {record.name} ({record.where}: {theirs}) does not fit {name}'s "
                        f"{module_name} ({_torch_shapes(module)}), the {_ordinal(index + 1)} {words} of both"
                    )
                plan.append((dst, src))
    with torch.no_grad():
        for dst, src in plan:
            dst.copy_(torch.from_numpy(np.ascontiguousarray(src)).to(dst.dtype))
    for module, value in eps:
        module.eps = value


def _torch_shapes(module: nn.Module) -> str:
    """A module's weights in Keras's terms (a conv kernel as kh x kw x in x out), to compare with the file's."""
    if isinstance(module, nn.Conv2d):
        o, i, kh, kw = module.weight.shape
        return f"{kh}x{kw}x{i}x{o}" + (f", {o}" if module.bias is not None else "")
    if isinstance(module, nn.Linear):
        o, i = module.weight.shape
        return f"{i}x{o}" + (f", {o}" if module.bias is not None else "")
    n = module.weight.shape[0]
    return ", ".join([str(n)] * (4 if isinstance(module, nn.BatchNorm2d) else 2))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
