"""First-layer filters as pictures (Zeiler and Fergus 2014, Figures 5-6)."""

from __future__ import annotations

import numpy as np
from torch import nn

from ..errors import ConfigError
from .layers import resolve_layer


def first_conv(model: nn.Module) -> str:
    """The name of the network's first convolution (in module order).

    Raises:
        ConfigError: a network without one.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise ConfigError(f"{type(model).__name__} has no convolution")


def filters(model: nn.Module, layer: str | None = None) -> np.ndarray:
    """A convolution's filters, normalised for display.

    Each filter is scaled on its own to [0, 1] (its minimum to 0, its maximum to 1; a constant filter is
    0.5), as ZF-Net's Figures 5-6 show them. Filters over 3 input channels are RGB; over 1 channel, grey;
    over any other number of channels (a deeper layer), the mean over input channels, grey.

    Args:
        model: the network.
        layer: a ``Conv2d``'s module name (default: the first convolution).

    Returns:
        float32 array (N, kh, kw, 3) or (N, kh, kw, 1) in [0, 1], one entry per output channel.

    Raises:
        ConfigError: an unknown layer, or a layer that is not a convolution.
    """
    name = layer if layer is not None else first_conv(model)
    conv = resolve_layer(model, name)
    if not isinstance(conv, nn.Conv2d):
        raise ConfigError(f"layer {name!r} is a {type(conv).__name__}, not a convolution: it has no filters to show")
    w = conv.weight.detach().float().cpu().numpy()  # (N, C, kh, kw)
    if w.shape[1] not in (1, 3):
        w = w.mean(axis=1, keepdims=True)
    w = w.transpose(0, 2, 3, 1)
    low = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - low
    out = np.where(span > 0, (w - low) / np.where(span > 0, span, 1), 0.5)
    return out.astype(np.float32)


def grid(images: np.ndarray, *, columns: int | None = None, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile images (N, h, w, C) into one (H, W, C) picture, ``pad`` pixels of ``fill`` between them.

    ``columns`` defaults to the smallest count making the grid about square.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    if n == 0:
        raise ConfigError("no images to tile")
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y : y + h, x : x + w] = images[i]
    return out
