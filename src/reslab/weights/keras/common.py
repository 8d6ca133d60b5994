"""Shared pieces of the Keras converters: layer look-up by name and tensor copies with layout changes.

Keras stores a convolution kernel as (H, W, in, out) and a dense kernel as (in, out); PyTorch as
(out, in, H, W) and (out, in). Batch norm: gamma, beta, moving mean, moving variance (gamma / beta
absent where ``scale`` / ``center`` is off).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
    """A Keras model's weights by layer name, as NumPy arrays: from a live Keras model, or from
    ``{layer_name: [arrays]}`` read out of a weight file.

    Args:
        source: a Keras model (anything with ``.layers`` whose layers have ``name`` and
            ``get_weights()``), or a mapping from layer name to that layer's arrays in Keras's order.
        config: per layer, what the file says of it beyond its arrays (mapping source only), e.g.
            ``{"conv1_bn": {"epsilon": 1.001e-5, "weight_names": ["gamma", "beta", ...]}}``; a live
            layer's attributes (``epsilon``, ``scale``, ``center``) are read from it directly.
    """

    def __init__(self, source, config: dict[str, dict] | None = None):
        if hasattr(source, "layers"):
            self.model = source
            self.by_name = {layer.name: layer for layer in source.layers}
            self._arrays = None
        else:
            self.model = None
            self.by_name = dict(source)
            self._arrays = {k: [np.asarray(a) for a in v] for k, v in source.items()}
        self._config = dict(config or {})
        self.used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def _get(self, name: str) -> list[np.ndarray]:
        if self._arrays is not None:
            return self._arrays[name]
        return [np.asarray(w) for w in self.by_name[name].get_weights()]

    def weights(self, name: str) -> list[np.ndarray]:
        if name not in self.by_name:
            raise ConfigError(f"the Keras model has no layer {name!r}; is it the matching architecture?")
        self.used.add(name)
        return self._get(name)

    def config(self, name: str) -> dict:
        """What is known of layer ``name`` beyond its arrays: ``epsilon``, ``scale``, ``center`` (live
        layers' attributes; a file's model config), ``weight_names`` (a legacy file's), where known."""
        if self._arrays is None:
            layer = self.by_name.get(name)
            return {k: getattr(layer, k) for k in ("epsilon", "scale", "center") if hasattr(layer, k)}
        return dict(self._config.get(name) or {})

    def unused_weighted_layers(self) -> list[str]:
        """Names of Keras layers with weights that no converter read (a sign of a layout mismatch)."""
        return [n for n in self.by_name if n not in self.used and len(self._get(n)) > 0]


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


def _bn_parts(layers: KerasLayers, name: str, count: int) -> tuple[bool, bool]:
    """(scale, center) of Keras BatchNormalization ``name``: from its config or weight names where known,
    else from how many arrays it has (4: both, 2: neither; 3 is ambiguous without names)."""
    cfg = layers.config(name)
    if "weight_names" in cfg:
        short = [str(n).rsplit("/", 1)[-1].split(":", 1)[0] for n in cfg["weight_names"]]
        return "gamma" in short, "beta" in short
    if "scale" in cfg and "center" in cfg:
        return bool(cfg["scale"]), bool(cfg["center"])
    if count in (2, 4):
        return count == 4, count == 4
    raise ConfigError(f"{name}: a BatchNormalization with {count} arrays and no weight names (gamma or beta?)")


def copy_bn(bn: nn.BatchNorm2d, layers: KerasLayers, name: str) -> None:
    """Keras BatchNormalization ``name`` -> ``bn`` (gamma, beta, moving mean / variance), and Keras's
    epsilon where the layer (or the file's model config) gives it; otherwise ``bn`` keeps its own
    (legacy weights-only files carry no config: build the model with ``bn_eps=1.001e-5``, Keras's)."""
    w = layers.weights(name)
    scale, center = _bn_parts(layers, name, len(w))
    if len(w) != 2 + scale + center:
        raise ConfigError(f"{name}: expected {2 + scale + center} BatchNormalization arrays, got {len(w)}")
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
    eps = layers.config(name).get("epsilon")
    if eps is not None:
        bn.eps = float(eps)


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


@dataclass
class KerasRecord:
    """One Keras layer with weights, as a file stores it.

    Attributes:
        name: the layer's name (auto names such as ``conv2d_3`` carry Keras's per-class creation counter).
        where: where the file keeps it (a group path), for messages.
        arrays: its arrays in Keras's order (kernel, bias; gamma, beta, moving mean, moving variance).
        position: its place in the file (``model.layers`` order: the natural order of the paths, or the index
            in ``layer_names``).
        config: what the file says of it beyond its arrays (a full-model file's BatchNorm ``epsilon``).
    """

    name: str
    where: str
    arrays: list[np.ndarray]
    position: tuple
    config: dict = field(default_factory=dict)
