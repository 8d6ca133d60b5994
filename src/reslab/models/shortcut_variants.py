"""How a residual unit joins its shortcut h(x) and its branch F(x): "Identity Mappings" Figure 2 / Table 1.

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks" (ECCV 2016; arXiv 1603.05027),
Section 3.1, compares shortcuts on ResNet-110 (CIFAR-10 test error, Table 1):

- ``identity`` (Fig. 2a): ``h(x) + F(x)``, 6.61%;
- ``scaling`` (Fig. 2b): ``a * x + b * F(x)`` (a = ``shortcut_scale``, b = ``branch_scale``);
- ``exclusive_gating`` (Fig. 2c): ``(1 - g(x)) * x + g(x) * F(x)``, ``g(x) = sigmoid(W_g x + b_g)``;
- ``shortcut_gating`` (Fig. 2d): ``(1 - g(x)) * x + F(x)``;
- ``conv1x1`` (Fig. 2e): a 1x1 convolution (+ BN) as the shortcut of every unit;
- ``dropout`` (Fig. 2f): ``dropout(x) + F(x)``.

Each combination is a small module called with ``(shortcut, branch)`` in place of the unit's
addition. ``conv1x1`` changes the shortcut module instead (a projection, as option C), so it joins
the paths with :class:`Add`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError

SHORTCUT_VARIANTS = ("identity", "scaling", "exclusive_gating", "shortcut_gating", "conv1x1", "dropout")

#: each variant's own arguments, with their defaults (the paper's values: 0.5 / 0.5, b_g = -6, rate 0.5)
VARIANT_ARGS = {
    "scaling": {"shortcut_scale": 0.5, "branch_scale": 0.5},
    "exclusive_gating": {"gate_bias": -6.0},
    "shortcut_gating": {"gate_bias": -6.0},
    "dropout": {"shortcut_dropout": 0.5},
}


class Add(nn.Module):
    """Fig. 2(a): ``h(x) + F(x)``, the identity shortcut's addition (no parameters)."""

    def forward(self, shortcut: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return shortcut + branch


class ScaledAdd(nn.Module):
    """Fig. 2(b), constant scaling: ``shortcut_scale * x + branch_scale * F(x)`` (no parameters)."""

    def __init__(self, shortcut_scale: float, branch_scale: float):
        super().__init__()
        self.shortcut_scale, self.branch_scale = float(shortcut_scale), float(branch_scale)

    def forward(self, shortcut: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return self.shortcut_scale * shortcut + self.branch_scale * branch

    def extra_repr(self) -> str:
        return f"shortcut_scale={self.shortcut_scale}, branch_scale={self.branch_scale}"


class _Gate(nn.Module):
    """``g(x) = sigmoid(W_g x + b_g)``: the paper's "1x1 convolutional layer" with a bias, one gate
    per channel and position, computed from the unit's input (the identity shortcut's value)."""

    def __init__(self, channels: int, gate_bias: float):
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 1, bias=True)
        self.gate_bias = float(gate_bias)
        self.reset_gate()

    def reset_gate(self) -> None:
        """Set the gate's bias to ``gate_bias`` (-6 in the paper: the gate starts almost shut, g ~ 0.0025).

        The network's weight init zeroes every convolution bias, so it calls this again afterwards."""
        nn.init.constant_(self.gate.bias, self.gate_bias)

    def g(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(x))

    def extra_repr(self) -> str:
        return f"gate_bias={self.gate_bias}"


class ExclusiveGate(_Gate):
    """Fig. 2(c), exclusive gating: ``(1 - g(x)) * x + g(x) * F(x)`` (the gates of a highway network)."""

    def forward(self, shortcut: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        g = self.g(shortcut)
        return (1 - g) * shortcut + g * branch


class ShortcutGate(_Gate):
    """Fig. 2(d), shortcut-only gating: ``(1 - g(x)) * x + F(x)``."""

    def forward(self, shortcut: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return (1 - self.g(shortcut)) * shortcut + branch


class DropoutShortcut(nn.Module):
    """Fig. 2(f), dropout shortcut: ``dropout(x) + F(x)``.

    PyTorch's dropout: in training it zeroes elements with probability ``rate`` and scales the kept
    ones by ``1 / (1 - rate)``; in evaluation it is the identity."""

    def __init__(self, rate: float):
        super().__init__()
        self.dropout = nn.Dropout(rate)

    def forward(self, shortcut: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return self.dropout(shortcut) + branch


def check_shortcut_variant(
    variant: str,
    *,
    shortcut: str,
    shortcut_scale: float,
    branch_scale: float,
    gate_bias: float,
    shortcut_dropout: float,
) -> None:
    """Validate a shortcut variant and its arguments, or raise a one-line ConfigError naming the argument.

    ``shortcut``: the network's shortcut option (A/B/C/none); a variant other than ``identity``
    needs units with an identity shortcut, which ``"C"`` and ``"none"`` have none of. An argument
    changed from its default while the variant does not use it is refused too (it would do nothing).
    """
    if variant not in SHORTCUT_VARIANTS:
        raise ConfigError(f"shortcut_variant must be one of {', '.join(map(repr, SHORTCUT_VARIANTS))}, got {variant!r}")
    values = {
        "shortcut_scale": shortcut_scale,
        "branch_scale": branch_scale,
        "gate_bias": gate_bias,
        "shortcut_dropout": shortcut_dropout,
    }
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
    for name in ("shortcut_scale", "branch_scale"):
        if values[name] <= 0:
            raise ConfigError(f"{name} must be > 0, got {values[name]!r}")
    if not 0 <= shortcut_dropout < 1:
        raise ConfigError(f"shortcut_dropout must be in [0, 1), got {shortcut_dropout!r}")
    used = VARIANT_ARGS.get(variant, {})
    defaults = {k: v for args in VARIANT_ARGS.values() for k, v in args.items()}
    for name, value in values.items():
        if name not in used and value != defaults[name]:
            users = " or ".join(repr(v) for v, args in VARIANT_ARGS.items() if name in args)
            raise ConfigError(f"{name}={value!r} has no effect with shortcut_variant={variant!r} (it is for {users})")
    if variant != "identity" and shortcut in ("C", "none"):
        why = "projects every shortcut" if shortcut == "C" else "has no shortcuts"
        raise ConfigError(
            f"shortcut_variant={variant!r} replaces identity shortcuts, but shortcut={shortcut!r} {why}; "
            "use shortcut='A' or 'B'"
        )


def make_combine(
    variant: str,
    channels: int,
    *,
    shortcut_scale: float = 0.5,
    branch_scale: float = 0.5,
    gate_bias: float = -6.0,
    shortcut_dropout: float = 0.5,
) -> nn.Module:
    """The module that joins an identity shortcut and a branch of ``channels`` channels for ``variant``."""
    if variant == "scaling":
        return ScaledAdd(shortcut_scale, branch_scale)
    if variant == "exclusive_gating":
        return ExclusiveGate(channels, gate_bias)
    if variant == "shortcut_gating":
        return ShortcutGate(channels, gate_bias)
    if variant == "dropout":
        return DropoutShortcut(shortcut_dropout)
    return Add()  # identity, and conv1x1 (whose shortcut module is the 1x1 convolution)
