"""Building blocks shared by the models: convolutions, conv-BN-activation, initialisation, LRN and the
spatial-size arithmetic. The residual shortcuts (options A/B/C) are in :mod:`reslab.models.shortcuts`."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def make_activation(name: str, inplace: bool = False) -> nn.Module:
    """``nn.ReLU``/``nn.Tanh``/``nn.Sigmoid`` by name (ReLU may work in place)."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return nn.ReLU(inplace=inplace) if name == "relu" else ACTIVATIONS[name]()


def conv3x3(in_chs: int, out_chs: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution, padding 1 (the same as Keras's explicit 1-pixel zero padding + 'valid')."""
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=bias)


def conv1x1(in_chs: int, out_chs: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=bias)


class ConvBnAct(nn.Sequential):
    """Convolution, batch norm (optional), activation (optional): keys ``conv``, ``bn``."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        *,
        bn: bool = True,
        act: str | None = "relu",
        bias: bool | None = None,
        bn_eps: float = 1e-5,
    ):
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, bias=(not bn) if bias is None else bias)
        if bn:
            self.bn = nn.BatchNorm2d(out_chs, eps=bn_eps)
        if act is not None:
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
