"""Getting a network and an image to look at: reslab's one loader (:mod:`reslab.training.loading`), so a
picture shows exactly what ``reslab predict`` computes, and a preprocessed input turned back into pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..training.loading import LoadedModel, class_index, load_image, load_model

__all__ = ["LoadedModel", "class_index", "display_image", "load_image", "load_model"]


def display_image(x: torch.Tensor, info: dict[str, Any]) -> np.ndarray:
    """A preprocessed input (1, C, H, W) or (C, H, W) back to displayable pixels (H, W, C) in [0, 1]:
    the normalisation undone (``x * std + mean``)."""
    x = x.detach().float().cpu()
    if x.dim() == 4:
        x = x[0]
    c = x.shape[0]
    mean = torch.tensor([float(v) for v in info.get("mean", [0.0] * c)]).view(-1, 1, 1)
    std = torch.tensor([float(v) for v in info.get("std", [1.0] * c)]).view(-1, 1, 1)
    return (x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
