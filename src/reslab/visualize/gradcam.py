"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017, Section 3): where in the image a layer's evidence for a class lies.

A few lines with a forward hook; pytorch-grad-cam does the same but pulls in OpenCV.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .layers import capture, default_layer


def as_batch(x: torch.Tensor) -> torch.Tensor:
    """One image as a batch of one: (C, H, W) or (1, C, H, W) -> (1, C, H, W).

    Raises:
        ConfigError: any other shape.
    """
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"expected an image tensor (C, H, W) or (1, C, H, W), got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ConfigError(f"expected one image (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}")
    return x


def logits_of(output) -> torch.Tensor:
    """The main logits of a model's output (GoogLeNet's AuxLogits in training mode have ``.logits``)."""
    return getattr(output, "logits", output)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def check_target(target: int | None, num_classes: int) -> None:
    if target is not None and (
        isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < num_classes
    ):
        raise ConfigError(f"target must be a class index 0-{num_classes - 1}, got {target!r}")


def gradcam(model: nn.Module, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Grad-CAM of one image: ReLU(sum_k alpha_k A^k) with alpha_k the spatial mean of d y_c / d A^k, where A
    is ``layer``'s output and y_c the class score before the softmax; upsampled bilinearly to the input's
    size and divided by its maximum.

    Args:
        model: the network (run as it is: put it in eval mode first).
        x: one preprocessed image, (C, H, W) or (1, C, H, W).
        target: the class index; None = the predicted class.
        layer: a module name; default the last stage (:func:`reslab.visualize.layers.default_layer`).

    Returns:
        float32 array (H, W) in [0, 1] at the input's size (all zeros where no location has positive
        evidence).

    Raises:
        ConfigError: a bad layer, target or input shape.
    """
    x = as_batch(x).to(_device(model))
    name = layer if layer is not None else default_layer(model)
    with capture(model, name) as store, torch.enable_grad():
        logits = logits_of(model(x))
        if "out" not in store:
            raise ConfigError(f"layer {name!r} did not run in the forward pass; choose another")
        acts = store["out"]
        if acts.dim() != 4:
            raise ConfigError(f"layer {name!r} gives shape {tuple(acts.shape)}, not a (N, C, H, W) feature map")
        check_target(target, logits.shape[1])
        c = int(logits[0].argmax()) if target is None else target
        if not acts.requires_grad:
            raise ConfigError(f"layer {name!r} does not depend on trainable weights or the input; choose another")
        (grads,) = torch.autograd.grad(logits[0, c], acts)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # alpha_k: global-average-pooled gradients
    cam = torch.relu((weights * acts).sum(dim=1, keepdim=True)).detach().float()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    cam = cam / peak if peak > 0 else torch.zeros_like(cam)
    return cam.cpu().numpy().astype(np.float32)
