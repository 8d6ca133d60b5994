"""A layer's feature maps for one image."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .gradcam import _device, as_batch
from .layers import capture


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> np.ndarray:
    """The output of ``layer`` for one image (the raw activations, not rescaled).

    Args:
        model: the network (put it in eval mode first).
        x: one preprocessed image, (C, H, W) or (1, C, H, W).
        layer: a module name (``model.named_modules()``).

    Returns:
        float32 array (C, H, W).

    Raises:
        ConfigError: an unknown layer, or one whose output is not a (N, C, H, W) feature map.
    """
    x = as_batch(x).to(_device(model))
    with capture(model, layer) as store, torch.no_grad():
        model(x)
    if "out" not in store:
        raise ConfigError(f"layer {layer!r} did not run in the forward pass; choose another")
    out = store["out"]
    if out.dim() != 4:
        raise ConfigError(f"layer {layer!r} gives shape {tuple(out.shape)}, not a (N, C, H, W) feature map")
    return out[0].detach().float().cpu().numpy()
