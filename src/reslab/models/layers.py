"""Building blocks shared by the models: convolutions, conv-BN-activation, initialisation, LRN and the
spatial-size arithmetic. The residual shortcuts (options A/B/C) are in :mod:`reslab.models.shortcuts`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def make_activation(name: str, inplace: bool = False) -> nn.Module:
    """``nn.ReLU``/``nn.Tanh``/``nn.Sigmoid`` by name (ReLU may work in place)."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return nn.ReLU(inplace=inplace) if name == "relu" else ACTIVATIONS[name]()


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, tuple | list) else (int(v), int(v))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's / Keras's ``padding="same"`` along one axis of ``size`` pixels: the output has
    ``ceil(size / stride)`` pixels, and where the total padding is odd the extra pixel goes after (bottom /
    right), not before."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def needs_same_module(kernel, stride) -> bool:
    """Whether Keras's 'same' padding can differ from PyTorch's symmetric padding: a strided layer or an
    even kernel (a stride-1 odd kernel pads ``k // 2`` on both sides, whatever the input size)."""
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    return sh > 1 or sw > 1 or kh % 2 == 0 or kw % 2 == 0


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's 'same' padding, computed from each input's size (asymmetric where
    the total is odd: the extra row / column at the bottom / right). Keras networks written with
    ``padding="same"`` need it wherever it differs from symmetric padding (:func:`needs_same_module`):
    strided layers on even maps, even kernels such as tutorial 004's (3, 2). Parameters and state-dict keys
    are ``nn.Conv2d``'s."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size, stride=1, *, bias: bool = True):
        super().__init__(in_chs, out_chs, kernel_size, stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class MaxPool2dSame(nn.MaxPool2d):
    """Max pooling with TensorFlow's 'same' padding: padded positions never win (they are -inf), and the
    extra row / column goes at the bottom / right."""

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = _pair(self.kernel_size), _pair(self.stride)
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), (kh, kw), (sh, sw))


def conv2d_same(in_chs: int, out_chs: int, kernel_size, stride=1, *, bias: bool = True) -> nn.Conv2d:
    """A convolution with Keras's 'same' padding: ``nn.Conv2d`` with symmetric padding where that is the
    same for every input size, else :class:`Conv2dSame`."""
    if needs_same_module(kernel_size, stride):
        return Conv2dSame(in_chs, out_chs, kernel_size, stride, bias=bias)
    kh, kw = _pair(kernel_size)
    return nn.Conv2d(in_chs, out_chs, (kh, kw), stride, padding=(kh // 2, kw // 2), bias=bias)


def conv3x3(in_chs: int, out_chs: int, stride: int = 1, bias: bool = False, *, same: bool = False) -> nn.Conv2d:
    """3x3 convolution, padding 1 (the same as Keras's explicit 1-pixel zero padding + 'valid'); ``same``:
    Keras's ``padding="same"`` instead (they differ on strided layers over even maps)."""
    if same:
        return conv2d_same(in_chs, out_chs, 3, stride, bias=bias)
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=bias)


def conv1x1(in_chs: int, out_chs: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=bias)


class Scale(nn.Module):
    """A per-channel affine map ``weight * x + bias`` (the ``Scale`` layer Caffe-converted Keras DenseNets put
    after each batch norm, which has no affine part in Caffe). Keys ``weight``, ``bias``."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


#: the orders of :class:`ConvBnAct`: the usual conv-BN-activation, or conv-activation-BN (tutorial 004)
CONV_ORDERS = ("conv_bn_act", "conv_act_bn")


class ConvBnAct(nn.Sequential):
    """Convolution, batch norm (optional), activation (optional): keys ``conv``, ``bn``.

    ``order="conv_act_bn"`` applies the activation before the batch norm (tutorial 004's ``Conv2d_BN``:
    ``Conv2D(activation="relu")`` then ``BatchNormalization``); ``padding="same"`` is Keras's 'same'
    padding (:func:`conv2d_same`).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str | None = None,
        *,
        bn: bool = True,
        act: str | None = "relu",
        bias: bool | None = None,
        bn_eps: float = 1e-5,
        order: str = "conv_bn_act",
    ):
        super().__init__()
        if order not in CONV_ORDERS:
            raise ConfigError(f"order must be one of {', '.join(CONV_ORDERS)}, got {order!r}")
        bias = (not bn) if bias is None else bias
        if padding == "same":
            self.conv = conv2d_same(in_chs, out_chs, kernel_size, stride, bias=bias)
        else:
            padding = kernel_size // 2 if padding is None else padding
            self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, bias=bias)
        if order == "conv_act_bn" and act is not None:
            self.act = make_activation(act, inplace=True)
        if bn:
            self.bn = nn.BatchNorm2d(out_chs, eps=bn_eps)
        if order == "conv_bn_act" and act is not None:
            self.act = make_activation(act, inplace=True)


def init_weights(model: nn.Module, *, linear: str = "default") -> None:
    """He (fan-out, ReLU) init for convolutions, BN gamma 1 / beta 0, biases 0.

    He et al. (2015), "Delving Deep into Rectifiers", as the ResNet paper uses. ``linear``:
    ``"default"`` keeps PyTorch's init for linear layers (as torchvision's ResNet); ``"normal"``
    uses N(0, 0.01) with zero bias (as torchvision's VGG/AlexNet-era models).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear == "normal":
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def check_positive_ints(name: str, values, length: int | None = None) -> tuple[int, ...]:
    """Validate a tuple of positive whole numbers (stage depths, widths) or raise ConfigError naming it."""
    try:
        values = tuple(values)
    except TypeError:
        raise ConfigError(f"{name} must be a sequence of whole numbers, got {values!r}") from None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values) or not values:
        raise ConfigError(f"{name} must be whole numbers >= 1, got {values!r}")
    if length is not None and len(values) != length:
        raise ConfigError(f"{name} needs {length} entries (one per stage), got {len(values)}: {values!r}")
    return values


# --------------------------------------------------------------------------------------------------
# Added for the classic CNN zoo (AlexNet, ZF-Net, GoogLeNet, VGG, DenseNet).

LRN_CONVENTIONS = ("sum", "mean")


def local_response_norm(
    size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, *, alpha_applies_to: str = "sum"
) -> nn.LocalResponseNorm:
    """Local response normalisation across channels, with the papers' constants taken as written.

    AlexNet (Krizhevsky et al. 2012, Section 3.3) defines ``b = a / (k + alpha * sum(a^2))^beta`` with
    the sum over ``size`` adjacent channels (k=2, n=5, alpha=1e-4, beta=0.75). ``nn.LocalResponseNorm``
    (like Caffe) multiplies alpha by the *mean* of the squares, i.e. divides alpha by ``size``.

    Args:
        size: channels in the window (n), centred on the channel (edges clipped, as in the paper).
        alpha, beta, k: the formula's constants.
        alpha_applies_to: ``"sum"`` (the AlexNet paper's convention: alpha is passed to torch as
            ``alpha * size``) or ``"mean"`` (Caffe's and torch's convention: passed as it is).

    Returns:
        An ``nn.LocalResponseNorm`` (no parameters, so state dicts are unaffected).

    Raises:
        ConfigError: a non-positive size or an unknown convention.
    """
    if alpha_applies_to not in LRN_CONVENTIONS:
        raise ConfigError(f"alpha_applies_to must be one of {', '.join(LRN_CONVENTIONS)}, got {alpha_applies_to!r}")
    size = check_positive_ints("size", (size,))[0]
    torch_alpha = alpha * size if alpha_applies_to == "sum" else alpha
    return nn.LocalResponseNorm(size, alpha=torch_alpha, beta=beta, k=k)


def _pair_first(v) -> int:
    return int(v[0]) if isinstance(v, tuple | list) else int(v)


def spatial_output_size(size: int, layer: nn.Module) -> int:
    """The height (= width) after ``layer``, by PyTorch's own formulas; 0 or less where PyTorch refuses.

    Convolutions and max/average pooling (``ceil_mode`` included, as ATen computes it) change the
    size; adaptive pools give their output size; ``nn.Sequential`` is followed layer by layer; any
    other layer keeps the size. Square inputs and square kernels are assumed.
    """
    if isinstance(layer, nn.Sequential):
        for child in layer:
            size = spatial_output_size(size, child)
            if size < 1:
                return size
        return size
    if isinstance(layer, Conv2dSame | MaxPool2dSame):
        return -(-size // _pair_first(layer.stride))
    if isinstance(layer, nn.Conv2d):
        k, s, p, d = (_pair_first(getattr(layer, a)) for a in ("kernel_size", "stride", "padding", "dilation"))
        return (size + 2 * p - d * (k - 1) - 1) // s + 1
    if isinstance(layer, nn.MaxPool2d | nn.AvgPool2d):
        k, p = _pair_first(layer.kernel_size), _pair_first(layer.padding)
        s = _pair_first(layer.stride or layer.kernel_size)
        d = _pair_first(layer.dilation) if isinstance(layer, nn.MaxPool2d) else 1
        out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if layer.ceil_mode else 0)) // s + 1
        # ceil mode: the last window must start inside the input or its left padding (ATen's rule)
        if layer.ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        return out
    if isinstance(layer, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return _pair_first(layer.output_size)
    if isinstance(layer, nn.ZeroPad2d):
        pad = layer.padding if isinstance(layer.padding, tuple | list) else (layer.padding,) * 4
        return size + int(pad[0]) + int(pad[1])  # left + right (square inputs, symmetric padding)
    return size


def smallest_input_size(layers, *, limit: int = 4096) -> int:
    """The smallest square input for which every layer of ``layers`` (in order) gives an output >= 1x1.

    ``layers``: the modules along the network's main path that change the spatial size (branches
    that keep the size, such as Inception modules or dense layers, need not be listed).
    """
    layers = list(layers)
    for size in range(1, limit + 1):
        s = size
        for layer in layers:
            s = spatial_output_size(s, layer)
            if s < 1:
                break
        else:
            return size
    raise ConfigError(f"no input size up to {limit} fits these layers")  # pragma: no cover
