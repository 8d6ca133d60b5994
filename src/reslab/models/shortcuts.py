"""The shortcut h(x) of a residual unit where it is not the identity: He et al., "Deep Residual Learning for
Image Recognition" (2015), Section 3.3 -- (A) zero-padding for increasing dimensions, parameter-free; (B)
projection where the shape changes; (C) projection everywhere -- and ``"none"`` for the plain network.

How an identity shortcut *joins* its branch (addition, scaling, gating, ... of "Identity Mappings" Figure 2)
is the other dimension: :mod:`reslab.models.shortcut_variants`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .layers import conv1x1, conv2d_same

#: where option A puts its zero channels: ``"append"`` after the input's channels (fb.resnet.torch's
#: ``nn.Padding`` shortcut, reslab's default) or ``"split"`` half before and half after (akamaster's
#: pytorch_resnet_cifar10: ``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))``)
SHORTCUT_PADS = ("append", "split")


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and pad the new channels with zeros (no parameters).

    ``pad``: where the zero channels go (:data:`SHORTCUT_PADS`). Both are the paper's option A; they
    differ in which input channel each output channel carries, so weights trained with one give wrong
    outputs with the other (akamaster's CIFAR ResNets need ``"split"``). ``"split"`` puts
    ``(out - in) // 2`` zeros before and the rest after.

    A module, not a lambda, so models pickle; it has no state, so state dicts are unaffected.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, pad: str = "append"):
        super().__init__()
        if out_chs < in_chs:
            raise ConfigError(f"zero-padding shortcut cannot reduce channels ({in_chs} -> {out_chs})")
        if pad not in SHORTCUT_PADS:
            raise ConfigError(f"shortcut_pad must be one of {', '.join(map(repr, SHORTCUT_PADS))}, got {pad!r}")
        self.in_chs, self.out_chs, self.stride, self.pad = in_chs, out_chs, stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_chs - self.in_chs
        if extra > 0:
            before = extra // 2 if self.pad == "split" else 0
            x = F.pad(x, (0, 0, 0, 0, before, extra - before))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_chs}, {self.out_chs}, stride={self.stride}, pad={self.pad!r}"


#: how a projection shortcut is built: a convolution, then a BN (the papers, torchvision), nothing
#: (pre-activation units and tutorial 000's BN-free 1x1), or a ReLU and a BN (tutorial 004's Conv2d_BN)
PROJECTIONS = ("conv_bn", "conv", "conv_relu_bn")


def projection_shortcut(
    in_chs: int,
    out_chs: int,
    stride: int,
    *,
    style: str = "conv_bn",
    kernel_size: int = 1,
    bias: bool = False,
    bn_eps: float = 1e-5,
    same: bool = False,
) -> nn.Sequential:
    """Options B/C: a strided ``kernel_size`` convolution (1x1 in the papers; tutorial 004 writes 3x3) and
    what follows it (``style``, :data:`PROJECTIONS`): keys ``0`` (conv) and, with a BN, ``1`` (bn) as
    torchvision's -- or ``0`` conv, ``1`` ReLU, ``2`` bn for ``"conv_relu_bn"``. ``same``: Keras's 'same'
    padding (:func:`reslab.models.layers.conv2d_same`)."""
    if style not in PROJECTIONS:
        raise ConfigError(f"projection must be one of {', '.join(PROJECTIONS)}, got {style!r}")
    if kernel_size == 1:
        conv = conv1x1(in_chs, out_chs, stride, bias=bias)
    elif same:
        conv = conv2d_same(in_chs, out_chs, kernel_size, stride, bias=bias)
    else:
        conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, bias=bias)
    layers: list[nn.Module] = [conv]
    if style == "conv_relu_bn":
        layers.append(nn.ReLU(inplace=True))
    if style != "conv":
        layers.append(nn.BatchNorm2d(out_chs, eps=bn_eps))
    return nn.Sequential(*layers)


SHORTCUTS = ("A", "B", "C", "none")


def make_shortcut(
    option: str,
    in_chs: int,
    out_chs: int,
    stride: int,
    *,
    projection: str = "conv_bn",
    kernel_size: int = 1,
    bias: bool = False,
    bn_eps: float = 1e-5,
    subsample_by_pool: bool = False,
    pad: str = "append",
    same: bool = False,
) -> nn.Module | None:
    """The shortcut module for one residual unit, or None where it is the identity (or absent).

    ``pad``: option A's placement of the zero channels (:data:`SHORTCUT_PADS`). ``projection``,
    ``kernel_size``, ``bias``, ``bn_eps``, ``same``: a projection's make-up (:func:`projection_shortcut`).

    ``subsample_by_pool``: on a strided unit whose shape otherwise matches, subsample with a 1x1
    max-pool (keras.applications' ResNetV2 does this) instead of projecting.
    """
    if option not in SHORTCUTS:
        raise ConfigError(f"shortcut must be one of {', '.join(SHORTCUTS)}, got {option!r}")
    changes = stride != 1 or in_chs != out_chs
    if option == "none" or (option != "C" and not changes):
        return None
    if option == "A":
        return ZeroPadShortcut(in_chs, out_chs, stride, pad)
    if option == "B" and subsample_by_pool and in_chs == out_chs:
        return nn.MaxPool2d(1, stride)
    return projection_shortcut(
        in_chs, out_chs, stride, style=projection, kernel_size=kernel_size, bias=bias, bn_eps=bn_eps, same=same
    )
