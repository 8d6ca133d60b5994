"""Shared pieces of the Keras converters: layer look-up by name and tensor copies with layout changes.

Keras stores a convolution kernel as (H, W, in, out) and a dense kernel as (in, out); PyTorch as
(out, in, H, W) and (out, in). Batch norm: gamma, beta, moving mean, moving variance (gamma / beta
absent where ``scale`` / ``center`` is off).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError

_CONVERTERS: dict[type, Callable] = {}


def register_converter(cls: type) -> Callable:
    """Decorator: ``fn(model, layers: KerasLayers)`` converts Keras weights into a ``cls`` model."""

    def deco(fn: Callable) -> Callable:
        _CONVERTERS[cls] = fn
        return fn

    return deco


def converter_for(model: nn.Module) -> Callable | None:
    for cls in type(model).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    return None


class KerasLayers:
    """A Keras model's layers by name, with the weights as NumPy arrays."""

    def __init__(self, keras_model):
        self.model = keras_model
        self.by_name = {layer.name: layer for layer in keras_model.layers}
        self.used: set[str] = set()

    def weights(self, name: str) -> list[np.ndarray]:
        if name not in self.by_name:
            raise ConfigError(f"the Keras model has no layer {name!r}; is it the matching architecture?")
        self.used.add(name)
        return [np.asarray(w) for w in self.by_name[name].get_weights()]

    def unused_weighted_layers(self) -> list[str]:
        """Names of Keras layers with weights that no converter read (a sign of a layout mismatch)."""
        return [n for n, layer in self.by_name.items() if layer.get_weights() and n not in self.used]


def _copy(dst: torch.Tensor, src: np.ndarray, what: str) -> None:
    src_t = torch.from_numpy(np.ascontiguousarray(src))
    if tuple(dst.shape) != tuple(src_t.shape):
        raise ConfigError(f"{what}: shape {tuple(src_t.shape)} (Keras, converted) != {tuple(dst.shape)} (reslab)")
    with torch.no_grad():
        dst.copy_(src_t.to(dst.dtype))


def copy_conv(conv: nn.Conv2d, layers: KerasLayers, name: str) -> None:
    """Keras Conv2D ``name`` -> ``conv`` (kernel HWIO -> OIHW, bias where both have one)."""
    w = layers.weights(name)
    _copy(conv.weight, w[0].transpose(3, 2, 0, 1), f"{name} kernel")
    if (conv.bias is not None) != (len(w) > 1):
        raise ConfigError(f"{name}: bias mismatch (Keras has {'a' if len(w) > 1 else 'no'} bias)")
    if conv.bias is not None:
        _copy(conv.bias, w[1], f"{name} bias")


def copy_bn(bn: nn.BatchNorm2d, layers: KerasLayers, name: str) -> None:
    """Keras BatchNormalization ``name`` -> ``bn`` (gamma, beta, moving mean / variance)."""
    layer = layers.by_name.get(name)
    w = layers.weights(name)
    scale = getattr(layer, "scale", True)
    center = getattr(layer, "center", True)
    i = 0
    if scale:
        _copy(bn.weight, w[i], f"{name} gamma")
        i += 1
    else:
        nn.init.ones_(bn.weight)
    if center:
        _copy(bn.bias, w[i], f"{name} beta")
        i += 1
    else:
        nn.init.zeros_(bn.bias)
    _copy(bn.running_mean, w[i], f"{name} moving_mean")
    _copy(bn.running_var, w[i + 1], f"{name} moving_variance")
    eps = getattr(layer, "epsilon", None)
    if eps is not None and abs(eps - bn.eps) > 1e-12:
        raise ConfigError(f"{name}: Keras epsilon {eps} != reslab's {bn.eps} (build the model with bn_eps={eps})")


def copy_dense(linear: nn.Linear, layers: KerasLayers, name: str, *, from_hwc: tuple[int, int, int] | None = None):
    """Keras Dense ``name`` -> ``linear``. ``from_hwc=(H, W, C)``: the Dense follows a Flatten of an
    NHWC map, so its input rows are reordered from Keras's (h, w, c) to PyTorch's (c, h, w) order."""
    w = layers.weights(name)
    kernel = w[0]
    if from_hwc is not None:
        h, wd, c = from_hwc
        kernel = kernel.reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(h * wd * c, -1)
    _copy(linear.weight, kernel.T, f"{name} kernel")
    if len(w) > 1:
        _copy(linear.bias, w[1], f"{name} bias")
