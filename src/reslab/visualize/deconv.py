"""Projecting a feature back to pixels: the deconvnet of Zeiler and Fergus 2014 (Section 2.1) for
conv / ReLU / max-pool networks, guided backpropagation (Springenberg et al. 2015) for the others, and
the top-9 activating images of a data set with their projections and patches (ZF Figure 2).

The deconvnet, as the paper: the chosen feature map's activation(s), every other activation of the layer
set to zero, go back through the layers below -- each max-pool *unpooled* with the switches recorded in
the forward pass, each ReLU *rectified*, each convolution *filtered with the transposed filters* (the
same weights, no bias: ``conv_transpose2d``) -- down to pixels. Response / contrast normalisation
layers (AlexNet's, ZF-Net's) and dropout are passed through, as the paper does. Where overlapping
pools (3x3/2) share a switch, the values sent there add up: the exact transpose of the pooling (with
non-overlapping pools this is ``max_unpool2d``).

The deconvnet is defined for a plain chain of those layers. A network with batch normalisation,
shortcuts (ResNet) or concatenation (DenseNet, GoogLeNet) has no such chain: there the closest
well-defined method is guided backpropagation -- the gradient of the activation with respect to the
input, with every ReLU passing back only positive signal where its input was positive -- and the result
says so (``method``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import ConfigError
from .gradcam import _device, as_batch
from .layers import resolve_layer

DECONVNET = "deconvnet"
GUIDED = "guided backpropagation"
KEEPS = ("max", "map")

#: the layers the deconvnet goes back through (ZF Section 2.1); normalisation and dropout pass through
_CHAIN_LAYERS = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.LocalResponseNorm, nn.Dropout, nn.Identity)


class _Stop(Exception):
    """Raised by a hook to end the forward pass at the chosen layer (the rest is not needed)."""


@dataclass
class _Step:
    name: str
    module: nn.Module
    input: torch.Tensor
    output: torch.Tensor
    switches: torch.Tensor | None = None


@dataclass
class Projection:
    """One feature projected to pixel space.

    Attributes:
        reconstruction: float32 (C, H, W) in the input's units (signed; see :func:`display_projection`).
        method: ``"deconvnet"`` (ZF Section 2.1) or ``"guided backpropagation"``.
        channel: the feature map.
        position: (row, column) of the activation projected (``keep="max"``), or None (the whole map).
        activation: its value (``keep="max"``) or the map's maximum.
        receptive_field: (top, left, size) of the input square that the activation sees, or None where
            the network is not a chain (then :func:`deconv_top` uses the reconstruction's support).
    """

    reconstruction: np.ndarray
    method: str
    channel: int
    position: tuple[int, int] | None
    activation: float
    receptive_field: tuple[int, int, int] | None = None


def _trace(model: nn.Module, x: torch.Tensor, layer: str) -> tuple[list[_Step], torch.Tensor, bool]:
    """Run ``model`` on ``x`` up to ``layer``: the leaf modules that ran (in order), the layer's output, and
    whether they form a plain chain the deconvnet can go back through."""
    target = resolve_layer(model, layer)
    steps: list[_Step] = []
    found: dict[str, torch.Tensor] = {}
    handles = []
    names = {id(m): n for n, m in model.named_modules()}

    def record(module, inputs, output):
        inp = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        step = _Step(names[id(module)], module, inp, output)
        if isinstance(module, nn.MaxPool2d) and inp is not None:
            # the switches: where each pooling window took its maximum (recomputed from the same input)
            _, step.switches = F.max_pool2d(
                inp,
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                ceil_mode=module.ceil_mode,
                return_indices=True,
            )
        steps.append(step)

    def target_hook(module, inputs, output):
        if not any(True for _ in module.children()):  # a leaf: the last step of the chain
            record(module, inputs, output)
        found["out"] = output
        raise _Stop

    try:
        for m in model.modules():
            if m is not target and not any(True for _ in m.children()):
                handles.append(m.register_forward_hook(record))
        handles.append(target.register_forward_hook(target_hook))
        try:
            model(x)
        except _Stop:
            pass
    finally:
        for h in handles:
            h.remove()
    if "out" not in found:
        raise ConfigError(f"layer {layer!r} did not run in the forward pass; choose another")
    out = found["out"]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"layer {layer!r} gives {shape}, not a (N, C, H, W) feature map; choose a convolutional layer"
        )
    return steps, out, _is_chain(steps, x, out)


def _is_chain(steps: list[_Step], x: torch.Tensor, out: torch.Tensor) -> bool:
    """Each layer takes exactly the previous one's output, from the image to ``out``, and every layer is one
    the deconvnet inverts (no batch norm, no shortcut, no concatenation, no functional op between)."""
    if not steps or steps[-1].output is not out:
        return False
    previous = x
    for step in steps:
        if not isinstance(step.module, _CHAIN_LAYERS) or step.input is not previous:
            return False
        if isinstance(step.module, nn.Conv2d) and (
            isinstance(step.module.padding, str) or step.module.padding_mode != "zeros"
        ):
            return False
        previous = step.output
    return True


def deconv_method(model: nn.Module, x: torch.Tensor, layer: str) -> str:
    """``"deconvnet"`` where the network up to ``layer`` is a conv / ReLU / max-pool chain, else
    ``"guided backpropagation"``."""
    with torch.no_grad():
        _, _, chain = _trace(model, as_batch(x).to(_device(model)), layer)
    return DECONVNET if chain else GUIDED


def unpool(y: torch.Tensor, switches: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Place each pooled value at its switch in a zero map of ``size`` (values sharing one add up)."""
    n, c = y.shape[:2]
    out = y.new_zeros(n, c, int(size[-2]) * int(size[-1]))
    out.scatter_add_(2, switches.flatten(2), y.flatten(2))
    return out.view(n, c, int(size[-2]), int(size[-1]))


def _conv_back(y: torch.Tensor, conv: nn.Conv2d, size: torch.Size) -> torch.Tensor:
    """Filter with the transposed filters (same weights, no bias), to the convolution's input size."""
    out_pad = []
    for i in range(2):
        k, s, p, d = conv.kernel_size[i], conv.stride[i], conv.padding[i], conv.dilation[i]
        base = (y.shape[2 + i] - 1) * s - 2 * p + d * (k - 1) + 1
        out_pad.append(int(size[-2 + i]) - base)
    return F.conv_transpose2d(
        y, conv.weight, None, conv.stride, conv.padding, tuple(out_pad), conv.groups, conv.dilation
    )


def _deconvnet(steps: list[_Step], top: torch.Tensor) -> torch.Tensor:
    y = top
    for step in reversed(steps):
        m = step.module
        if isinstance(m, nn.MaxPool2d):
            y = unpool(y, step.switches, step.input.shape)
        elif isinstance(m, nn.ReLU):
            y = torch.relu(y)
        elif isinstance(m, nn.Conv2d):
            y = _conv_back(y, m, step.input.shape)
        # LocalResponseNorm, Dropout, Identity: passed through (ZF Section 2.1 does not invert them)
    return y


def _receptive_field(steps: list[_Step], position: tuple[int, int]) -> tuple[int, int, int]:
    """(top, left, size) of the input square a unit at ``position`` of the chain's output sees."""
    size, jump, start = 1, 1.0, 0.0
    for step in steps:
        m = step.module
        if isinstance(m, nn.Conv2d | nn.MaxPool2d):
            k, s, p, d = (_first(getattr(m, a)) for a in ("kernel_size", "stride", "padding", "dilation"))
            span = d * (k - 1) + 1
            size += (span - 1) * int(jump)
            start += ((span - 1) / 2 - p) * jump
            jump *= s
    half = (size - 1) / 2
    top = int(round(start + position[0] * jump - half))
    left = int(round(start + position[1] * jump - half))
    return top, left, size


def _first(v: Any) -> int:
    return int(v[0]) if isinstance(v, tuple | list) else int(v)


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradient where the input was positive (guided backprop)."""

    @staticmethod
    def forward(ctx, x):
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0).to(grad.dtype)


_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _GuidedMode(TorchFunctionMode):
    """Every ReLU call (modules and functional alike) becomes :class:`_GuidedReLU` (out of place)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _RELUS:
            return _GuidedReLU.apply(args[0])
        return func(*args, **(kwargs or {}))


def _top_activation(out: torch.Tensor, channel: int, keep: str) -> tuple[torch.Tensor, tuple[int, int] | None, float]:
    """The layer's output with everything but ``channel``'s strongest activation (or whole map) zeroed."""
    fmap = out[0, channel]
    top = torch.zeros_like(out)
    if keep == "map":
        top[0, channel] = fmap
        return top, None, float(fmap.max())
    flat = int(fmap.flatten().argmax())
    i, j = divmod(flat, fmap.shape[1])
    top[0, channel, i, j] = fmap[i, j]
    return top, (i, j), float(fmap[i, j])


def deconv(
    model: nn.Module, x: torch.Tensor, layer: str, channel: int, *, keep: str = "max", method: str | None = None
) -> Projection:
    """Project one feature map of ``layer`` back to pixels for one image.

    Args:
        model: the network, in eval mode.
        x: one preprocessed image, (C, H, W) or (1, C, H, W).
        layer: a module name whose output is a feature map (``features.10``, ``layer3``).
        channel: the feature map.
        keep: ``"max"`` (ZF Figure 2: only the map's strongest activation is projected) or ``"map"``
            (the whole map, every other map zeroed: Section 2.1).
        method: None (the deconvnet where the network is a conv / ReLU / max-pool chain up to ``layer``,
            else guided backpropagation), or either by name (``"guided backpropagation"`` works on every
            network; ``"deconvnet"`` is refused where it is not defined).

    Returns:
        :class:`Projection`.

    Raises:
        ConfigError: a bad layer, channel, keep or method.
    """
    if keep not in KEEPS:
        raise ConfigError(f"keep must be one of {', '.join(KEEPS)}, got {keep!r}")
    if method not in (None, DECONVNET, GUIDED):
        raise ConfigError(f"method must be {DECONVNET!r} or {GUIDED!r}, got {method!r}")
    x = as_batch(x).to(_device(model))
    with torch.no_grad():
        steps, out, chain = _trace(model, x, layer)
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < out.shape[1]:
        raise ConfigError(
            f"layer {layer!r} has {out.shape[1]} feature maps (channels 0-{out.shape[1] - 1}), got channel {channel!r}"
        )
    if method == DECONVNET and not chain:
        raise ConfigError(
            f"the deconvnet needs a conv / ReLU / max-pool chain up to {layer!r}; this network has "
            "batch norm, shortcuts or concatenation: use guided backpropagation"
        )
    use_deconvnet = chain if method is None else method == DECONVNET
    if use_deconvnet:
        top, position, value = _top_activation(out, channel, keep)
        with torch.no_grad():
            rec = _deconvnet(steps, top)
    else:
        xg = x.detach().clone().requires_grad_(True)
        with _GuidedMode(), torch.enable_grad():
            _, out_g, _ = _trace(model, xg, layer)
            top, position, value = _top_activation(out_g.detach(), channel, keep)
            (rec,) = torch.autograd.grad(out_g, xg, grad_outputs=top)
    rf = _receptive_field(steps, position) if chain and position is not None else None
    return Projection(
        rec[0].detach().float().cpu().numpy(), DECONVNET if use_deconvnet else GUIDED, channel, position, value, rf
    )


def display_projection(reconstruction: np.ndarray) -> np.ndarray:
    """A reconstruction (C, H, W) as a picture (H, W, C) in [0, 1]: zero is mid-grey, the largest magnitude
    0 or 1."""
    r = np.asarray(reconstruction, dtype=np.float32)
    peak = float(np.abs(r).max())
    return (0.5 + r / (2 * peak) if peak > 0 else np.full_like(r, 0.5)).transpose(1, 2, 0)


@dataclass
class DeconvTop:
    """ZF Figure 2 for some feature maps of a layer: each one's top activating images of a data set.

    Attributes (``[k][t]``: the k-th channel's t-th strongest image):
        method: ``"deconvnet"`` or ``"guided backpropagation"``.
        layer, channels: what was projected.
        values, indices: the activation and the image's position in the data (evaluation split order).
        images: the images, (H, W, C) in [0, 1]. reconstructions: the projections (H, W, C), zero = grey.
        boxes: (top, left, size) of each patch: the unit's receptive field (a chain), else the square around
            the reconstruction's non-zero pixels; clipped to the image.
        patches, reconstruction_patches: the image and its reconstruction inside ``boxes``.
    """

    method: str
    layer: str
    channels: list[int]
    values: list[list[float]] = field(default_factory=list)
    indices: list[list[int]] = field(default_factory=list)
    images: list[list[np.ndarray]] = field(default_factory=list)
    reconstructions: list[list[np.ndarray]] = field(default_factory=list)
    boxes: list[list[tuple[int, int, int]]] = field(default_factory=list)
    patches: list[list[np.ndarray]] = field(default_factory=list)
    reconstruction_patches: list[list[np.ndarray]] = field(default_factory=list)


def _support_box(rec: np.ndarray) -> tuple[int, int, int]:
    """The smallest square holding the reconstruction's non-zero pixels."""
    mask = np.abs(rec).sum(0) > 0
    if not mask.any():
        return 0, 0, min(mask.shape)
    rows, cols = np.where(mask.any(1))[0], np.where(mask.any(0))[0]
    size = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    return int((rows[0] + rows[-1] + 1 - size) // 2), int((cols[0] + cols[-1] + 1 - size) // 2), int(size)


def _clip_box(box: tuple[int, int, int], h: int, w: int) -> tuple[int, int, int]:
    """The same-sized square moved inside the image (the whole image where it does not fit)."""
    top, left, size = box
    size = min(size, h, w)
    return min(max(top, 0), h - size), min(max(left, 0), w - size), size


def _batches(data: Any) -> Iterable:
    """The evaluation split of a DataBundle (its test split, else its validation split), or the batches given."""
    if hasattr(data, "val") and hasattr(data, "test"):
        return data.test if data.test is not None else data.val
    return data


def deconv_top(
    model: nn.Module,
    data: Any,
    layer: str,
    channels: list[int] | None = None,
    top: int = 9,
    *,
    mean: Any = None,
    std: Any = None,
) -> DeconvTop:
    """ZF Figure 2: for each channel of ``layer``, the ``top`` images of ``data`` that activate it most
    (by the map's largest activation), each image's projection of that activation and the patches.

    Args:
        model: the network, in eval mode.
        data: a :class:`reslab.data.DataBundle` (its evaluation split: test, else validation) or an iterable
            of ``(images, labels)`` batches of preprocessed images.
        layer: a module name whose output is a feature map.
        channels: the feature maps (default: the first 8).
        top: images per channel (ZF: 9).
        mean, std: the preprocessing, to show the images (default: the bundle's).

    Returns:
        :class:`DeconvTop`.

    Raises:
        ConfigError: a bad layer, channel or ``top``; data without images.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be a whole number >= 1, got {top!r}")
    mean = mean if mean is not None else getattr(data, "mean", None)
    std = std if std is not None else getattr(data, "std", None)
    device = _device(model)
    best_v: torch.Tensor | None = None  # (K, top) values, indices, and the images themselves
    best_i: torch.Tensor | None = None
    best_x: torch.Tensor | None = None
    seen = 0
    for batch in _batches(data):
        images = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device)
        with torch.no_grad():
            _, out, _ = _trace(model, images, layer)
        if channels is None:
            channels = list(range(min(8, out.shape[1])))
        bad = [c for c in channels if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < out.shape[1]]
        if bad:
            raise ConfigError(
                f"layer {layer!r} has {out.shape[1]} feature maps (channels 0-{out.shape[1] - 1}), "
                f"got channel {bad[0]!r}"
            )
        vals = out[:, channels].flatten(2).amax(2).T.float().cpu()  # (K, N)
        idx = torch.arange(seen, seen + len(images)).expand(len(channels), -1)
        cpu_images = images.detach().cpu()
        prev = 0 if best_v is None else best_v.shape[1]
        if best_v is not None:
            vals, idx = torch.cat([best_v, vals], 1), torch.cat([best_i, idx], 1)
        k = min(top, vals.shape[1])
        best_v, order = vals.topk(k, dim=1)
        best_i = idx.gather(1, order)
        # keep only the images still in some channel's top: earlier winners or this batch's
        best_x = torch.stack(
            [
                torch.stack([best_x[c, o] if o < prev else cpu_images[o - prev] for o in order[c].tolist()])
                for c in range(len(channels))
            ]
        )
        seen += len(images)
    if best_v is None:
        raise ConfigError("the data holds no images")
    h, w = best_x.shape[-2:]
    info = {
        "mean": list(mean) if mean is not None else [0.0] * best_x.shape[2],
        "std": list(std) if std is not None else [1.0] * best_x.shape[2],
    }
    from .loading import display_image

    result = DeconvTop(method="", layer=layer, channels=list(channels))
    for c_pos, channel in enumerate(channels):
        row = {k: [] for k in ("images", "recs", "boxes", "patches", "rec_patches")}
        for t in range(best_x.shape[1]):
            x = best_x[c_pos, t]
            proj = deconv(model, x, layer, channel, keep="max")
            result.method = proj.method
            box = _clip_box(proj.receptive_field or _support_box(proj.reconstruction), h, w)
            image, rec = display_image(x, info), display_projection(proj.reconstruction)
            top_, left, size = box
            row["images"].append(image)
            row["recs"].append(rec)
            row["boxes"].append(box)
            row["patches"].append(image[top_ : top_ + size, left : left + size])
            row["rec_patches"].append(rec[top_ : top_ + size, left : left + size])
        result.values.append([float(v) for v in best_v[c_pos]])
        result.indices.append([int(i) for i in best_i[c_pos]])
        result.images.append(row["images"])
        result.reconstructions.append(row["recs"])
        result.boxes.append(row["boxes"])
        result.patches.append(row["patches"])
        result.reconstruction_patches.append(row["rec_patches"])
    return result
