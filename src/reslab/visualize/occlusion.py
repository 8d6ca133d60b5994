"""Occlusion sensitivity (Zeiler and Fergus 2014, Section 4.2 and Figure 7): the class probability as a
grey square slides over the image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .gradcam import _device, as_batch, check_target, logits_of


def occlusion_positions(size: int, patch: int, stride: int) -> list[int]:
    """The top (or left) edges of the occluding square along one side: 0, stride, ... while it fits."""
    return list(range(0, size - patch + 1, stride))


def default_patch(height: int, width: int) -> tuple[int, int]:
    """A quarter of the shorter side, moved by a quarter of that: (8, 2) at 32x32, (56, 14) at 224x224."""
    patch = max(1, min(height, width) // 4)
    return patch, max(1, patch // 4)


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: int | None = None,
    *,
    patch: int | None = None,
    stride: int | None = None,
    fill: float | Sequence[float] = 0.0,
    batch_size: int = 64,
) -> np.ndarray:
    """The probability of class ``target`` with a ``patch`` x ``patch`` square of ``fill`` over the image,
    at every position (``stride`` apart) where it fits; the occluded images go through in batches.

    Args:
        model: the network (put it in eval mode first).
        x: one preprocessed image, (C, H, W) or (1, C, H, W).
        target: the class; None = the class predicted for the whole image.
        patch, stride: the square's side and step in pixels (default :func:`default_patch`).
        fill: the square's value in the input's (normalised) units, one value or one per channel. 0 is the
            data's mean colour; the CLI passes mid-grey, ``(0.5 - mean) / std``.
        batch_size: occluded images per forward pass.

    Returns:
        float32 array (rows, columns): entry (i, j) is the probability with the square's top-left corner
        at (``i * stride``, ``j * stride``).

    Raises:
        ConfigError: a patch larger than the image, a stride or patch < 1, a bad target or fill.
    """
    x = as_batch(x).to(_device(model))
    c, h, w = x.shape[1:]
    d_patch, d_stride = default_patch(h, w)
    patch = d_patch if patch is None else patch
    stride = d_stride if stride is None else stride
    for name, value in (("patch", patch), ("stride", stride), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1 (pixels), got {value!r}")
    if patch > min(h, w):
        raise ConfigError(f"patch {patch} is larger than the {h}x{w} input; give at most {min(h, w)}")
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device).flatten()
    if fill_t.numel() not in (1, c):
        raise ConfigError(f"fill needs 1 or {c} values (one per channel), got {fill_t.numel()}")
    fill_t = fill_t.expand(c).view(c, 1, 1)
    ys, xs = occlusion_positions(h, patch, stride), occlusion_positions(w, patch, stride)
    corners = [(y, xx) for y in ys for xx in xs]
    probs: list[torch.Tensor] = []
    with torch.no_grad():
        if target is None:
            target = int(logits_of(model(x))[0].argmax())
        for start in range(0, len(corners), batch_size):
            chunk = corners[start : start + batch_size]
            batch = x.repeat(len(chunk), 1, 1, 1)
            for k, (y, xx) in enumerate(chunk):
                batch[k, :, y : y + patch, xx : xx + patch] = fill_t
            logits = logits_of(model(batch)).float()
            check_target(target, logits.shape[1])
            probs.append(torch.softmax(logits, dim=1)[:, target].cpu())
    return torch.cat(probs).view(len(ys), len(xs)).numpy().astype(np.float32)
