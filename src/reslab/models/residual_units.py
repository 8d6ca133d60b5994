"""Residual units, one class per unit order of "Identity Mappings" Figure 4, and the plain stack.

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks" (ECCV 2016; arXiv 1603.05027),
Figure 4 / Table 2; ``h`` is the shortcut, ``F`` the branch (basic: 3x3, 3x3; bottleneck: 1x1, 3x3,
1x1), ``+`` the unit's :mod:`combine <reslab.models.shortcut_variants>` (an addition unless a Figure 2
shortcut variant replaces it):

- (a) :class:`OriginalUnit`        ``relu(h(x) + BN(F(x)))``, conv-BN-ReLU inside F
- (b) :class:`BnAfterAddUnit`      ``relu(BN(h(x) + F(x)))``
- (c) :class:`ReluBeforeAddUnit`   ``h(x) + relu(BN(F(x)))``
- (d) :class:`ReluOnlyPreactUnit`  ``h(x) + F(relu(x))``, each conv preceded by ReLU, followed by BN
- (e) :class:`FullPreactUnit`      ``h(x) + F(relu(BN(x)))``, each conv preceded by BN-ReLU
- :class:`PlainUnit`: the same conv-BN-ReLU layers with no shortcut (the ResNet paper's plain nets).

Every class shares one constructor (:class:`ResidualUnit`), so the parameter names (``conv1``,
``bn1``, ``conv2``, ..., ``downsample``) are the same for all orders and torchvision's, Keras's and
akamaster's checkpoints load strictly.

Where a pre-activation unit's shortcut starts (the authors' ``resnet-pre-act.lua`` and
fb.resnet.torch's ``preresnet.lua``): the first unit of every stage pre-activates BEFORE splitting, so
its shortcut (identity, zero-padding or projection) carries the activated input; for the network's
first unit that is "the first activation right after conv1 and before splitting into two paths"
(the paper's appendix). The other units pre-activate their branch only; their identity shortcut
carries the raw sum. A projection shortcut always takes the pre-activated input.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .layers import conv1x1, conv3x3
from .shortcut_variants import Add

#: the residual-unit orders of "Identity Mappings", Figure 4 (a)-(e)
FIGURE4_UNITS = ("original", "bn_after_add", "relu_before_add", "relu_only_preact", "full_preact")
#: every unit order: Figure 4's, and tutorial 004's conv-ReLU-BN layers with no ReLU after the addition
UNITS = (*FIGURE4_UNITS, "conv_relu_bn")
PREACTIVATION_UNITS = ("relu_only_preact", "full_preact")


class ResidualUnit(nn.Module):
    """What every unit has: the branch's convolutions and BNs, the shortcut h and the combination.

    Args:
        in_chs, width, out_chs: input channels, the branch's width, output channels.
        stride: the unit's stride (on the first 3x3 of a basic branch; see ``stride_in``).
        bottleneck: 1x1-3x3-1x1 branch instead of 3x3-3x3.
        shortcut: the shortcut module (``downsample``: zero-padding, projection, pooling); None is
            the identity.
        combine: joins ``(h(x), F(x))``; default :class:`~reslab.models.shortcut_variants.Add`.
        split_after_preactivation: (pre-activation units) the shortcut takes the pre-activated input:
            the first unit of a stage. A projection shortcut always does.
        stride_in: ``"3x3"`` or ``"first_1x1"``: which convolution of a bottleneck carries the stride.
        conv_bias: ``"none"``, ``"all"``, ``"unnormalised"`` (convolutions not followed by a BN) or
            ``"stem"`` (the network's first convolution only: none here).
        bn_eps: batch-norm epsilon.
        same_padding: Keras's ``padding="same"`` on the 3x3 convolutions (it differs from PyTorch's
            symmetric padding on strided layers over even maps: the extra pixel goes bottom / right).
    """

    #: the Figure 4 name of the order (one of :data:`UNITS`)
    unit = ""
    #: each BN normalises a convolution's input (pre-activation) instead of its output
    bn_before_conv = False

    def __init__(
        self,
        in_chs: int,
        width: int,
        out_chs: int,
        stride: int,
        *,
        bottleneck: bool,
        shortcut: nn.Module | None = None,
        combine: nn.Module | None = None,
        split_after_preactivation: bool = False,
        stride_in: str = "3x3",
        conv_bias: str = "none",
        bn_eps: float = 1e-5,
        same_padding: bool = False,
    ):
        super().__init__()
        self.bottleneck = bottleneck
        if bottleneck:
            s1, s2 = (stride, 1) if stride_in == "first_1x1" else (1, stride)
            shapes = [(in_chs, width, 1, s1), (width, width, 3, s2), (width, out_chs, 1, 1)]
        else:
            shapes = [(in_chs, width, 3, stride), (width, out_chs, 3, 1)]
        for i, (cin, cout, k, s) in enumerate(shapes, start=1):
            # A convolution has a bias for conv_bias="all" (keras ResNet50), or for "unnormalised"
            # where no BN follows it (keras ResNetV2: the last conv of a pre-activation branch).
            followed_by_bn = not (self.bn_before_conv and i == len(shapes))
            bias = conv_bias == "all" or (conv_bias == "unnormalised" and not followed_by_bn)
            conv = conv3x3(cin, cout, s, bias=bias, same=same_padding) if k == 3 else conv1x1(cin, cout, s, bias=bias)
            setattr(self, f"conv{i}", conv)
            setattr(self, f"bn{i}", nn.BatchNorm2d(cin if self.bn_before_conv else cout, eps=bn_eps))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut
        self.combine = combine if combine is not None else Add()
        self.shortcut_sees_preactivation = split_after_preactivation or isinstance(shortcut, nn.Sequential)

    def _layers(self) -> list[tuple[nn.Module, nn.Module]]:
        """The branch's (convolution, BN) pairs in order."""
        pairs = [(self.conv1, self.bn1), (self.conv2, self.bn2)]
        if self.bottleneck:
            pairs.append((self.conv3, self.bn3))
        return pairs

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """h(x): the identity, or the shortcut module (zero-padding, projection, pooling)."""
        return x if self.downsample is None else self.downsample(x)

    def _post_activated_convs(self, x: torch.Tensor) -> torch.Tensor:
        """conv-BN-ReLU for every layer but the last, then the last conv (its BN is the caller's)."""
        pairs = self._layers()
        for conv, bn in pairs[:-1]:
            x = self.relu(bn(conv(x)))
        return pairs[-1][0](x)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self._layers()[-1][1]

    def zero_init_last(self) -> None:
        """Make the branch start as zero, so the unit starts as its shortcut (Goyal et al., 2017)."""
        nn.init.zeros_(self.last_bn.weight)


class OriginalUnit(ResidualUnit):
    """(a) original (ResNet paper): ``relu(h(x) + BN(F(x)))``."""

    unit = "original"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.last_bn(self._post_activated_convs(x))
        return self.relu(self.combine(self.shortcut(x), branch))


class BnAfterAddUnit(ResidualUnit):
    """(b) BN after addition: ``relu(BN(h(x) + F(x)))``."""

    unit = "bn_after_add"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self._post_activated_convs(x)
        return self.relu(self.last_bn(self.combine(self.shortcut(x), branch)))

    def zero_init_last(self) -> None:
        raise ConfigError("zero_init_last has no meaning for unit='bn_after_add' (its last BN follows the add)")


class ReluBeforeAddUnit(ResidualUnit):
    """(c) ReLU before addition: ``h(x) + relu(BN(F(x)))``."""

    unit = "relu_before_add"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.relu(self.last_bn(self._post_activated_convs(x)))
        return self.combine(self.shortcut(x), branch)


class ReluOnlyPreactUnit(ResidualUnit):
    """(d) ReLU-only pre-activation: ``h(x) + F(relu(x))``, each conv preceded by ReLU, followed by BN."""

    unit = "relu_only_preact"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(x)  # not in place: x may still be the shortcut
        branch = pre
        for i, (conv, bn) in enumerate(self._layers()):
            branch = bn(conv(branch if i == 0 else self.relu(branch)))
        return self.combine(self.shortcut(pre if self.shortcut_sees_preactivation else x), branch)


class FullPreactUnit(ResidualUnit):
    """(e) full pre-activation: ``h(x) + F(relu(BN(x)))``, each conv preceded by BN-ReLU."""

    unit = "full_preact"
    bn_before_conv = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = self._layers()
        pre = self.relu(pairs[0][1](x))
        branch = pairs[0][0](pre)
        for conv, bn in pairs[1:]:
            branch = conv(self.relu(bn(branch)))
        return self.combine(self.shortcut(pre if self.shortcut_sees_preactivation else x), branch)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self._layers()[-1][0].weight)  # no BN ends the branch: zero its last conv


class ConvReluBnUnit(ResidualUnit):
    """Tutorial 004's ResNet50 unit (its ``Conv_Block``): every convolution followed by ReLU, then BN, and the
    sum returned as it is: ``h(x) + F(x)`` with ``F = [BN(relu(conv))] x 3``. Not a unit of either paper: the
    papers put BN before the ReLU and a ReLU after the addition (Figure 4 (a))."""

    unit = "conv_relu_bn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = x
        for conv, bn in self._layers():
            branch = bn(self.relu(conv(branch)))
        return self.combine(self.shortcut(x), branch)


class PlainUnit(ResidualUnit):
    """The plain network's layers ("Deep Residual Learning" Section 4.1): conv-BN-ReLU, no shortcut."""

    unit = "plain"

    def __init__(self, in_chs: int, width: int, out_chs: int, stride: int, **kwargs):
        super().__init__(in_chs, width, out_chs, stride, **kwargs)
        del self.combine  # nothing to combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.last_bn(self._post_activated_convs(x)))

    def zero_init_last(self) -> None:
        raise ConfigError("zero_init_last has no meaning for a plain network (shortcut='none'): no shortcut is left")


UNIT_CLASSES: dict[str, type[ResidualUnit]] = {
    cls.unit: cls
    for cls in (OriginalUnit, BnAfterAddUnit, ReluBeforeAddUnit, ReluOnlyPreactUnit, FullPreactUnit, ConvReluBnUnit)
}
