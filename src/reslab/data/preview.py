"""Labelled image grids of a batch, as the trainer sees it (``reslab show-data``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import ConfigError

if TYPE_CHECKING:
    from .bundle import DataBundle

#: images smaller than this are enlarged (nearest neighbour) so that 8x8 or 28x28 pixels stay visible
MIN_CELL = 64
LABEL_HEIGHT = 14
GAP = 2


def _to_uint8_nhwc(
    images: torch.Tensor | np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None
) -> np.ndarray:
    x = torch.as_tensor(images).detach().to("cpu")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ConfigError(f"expected images (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        out = x
    else:
        x = x.to(torch.float32)
        if mean is not None and std is not None:
            x = x * torch.tensor(list(std)).view(1, -1, 1, 1) + torch.tensor(list(mean)).view(1, -1, 1, 1)
        out = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    out = out.permute(0, 2, 3, 1).numpy()
    if out.shape[3] == 1:
        out = np.repeat(out, 3, axis=3)
    elif out.shape[3] != 3:
        out = np.repeat(out[..., :1], 3, axis=3)  # other channel counts: show the first channel in grey
    return out


def save_batch_grid(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | Sequence[int] | None,
    class_names: Sequence[str] | None,
    path: str | os.PathLike[str],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    nrow: int = 8,
) -> Path:
    """Write a PNG grid of a batch with each image's class name under it.

    Args:
        images: (N, C, H, W) uint8 (shown as is) or float; float batches are un-normalised with
            ``x * std + mean`` when both are given, else taken as [0, 1]. Any device.
        labels: (N,) class indices, or None for no captions.
        class_names: names for the labels (the index is shown where a name is missing).
        path: output file (parent directories are created).
        nrow: images per row.

    Returns:
        The path written.
    """
    arr = _to_uint8_nhwc(images, mean, std)
    n, h, w, _ = arr.shape
    scale = max(1, math.ceil(MIN_CELL / max(h, w)))
    cw, ch = w * scale, h * scale
    label_list = [] if labels is None else [int(v) for v in torch.as_tensor(labels).reshape(-1).tolist()]
    names = list(class_names or [])
    caption = LABEL_HEIGHT if label_list else 0
    cols = max(1, min(nrow, n))
    rows = max(1, math.ceil(n / cols))
    canvas = Image.new("RGB", (cols * (cw + GAP) + GAP, rows * (ch + caption + GAP) + GAP), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    max_chars = max(3, cw // 6)
    for i in range(n):
        x0 = GAP + (i % cols) * (cw + GAP)
        y0 = GAP + (i // cols) * (ch + caption + GAP)
        tile = Image.fromarray(arr[i])
        if scale > 1:
            tile = tile.resize((cw, ch), Image.Resampling.NEAREST)
        canvas.paste(tile, (x0, y0))
        if i < len(label_list):
            label = label_list[i]
            text = names[label] if 0 <= label < len(names) else str(label)
            draw.text((x0 + 1, y0 + ch + 1), text[:max_chars], fill=(0, 0, 0), font=font)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, format="PNG")
    return out


def save_preview(bundle: DataBundle, path: str | os.PathLike[str], n: int = 64, split: str = "train") -> Path:
    """Draw ``n`` images of ``split`` as the model receives them (training: augmented) into a PNG.

    The training loader is iterated at its current epoch, and its epoch counter is restored afterwards,
    so a preview does not shift the training run's epochs.
    """
    loader = bundle.train if split == "train" else bundle.loader(split)
    epoch = getattr(loader, "epoch", None)
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    count = 0
    for x, y in loader:
        images.append(x[: n - count].detach().to("cpu"))
        labels.append(y[: n - count].detach().to("cpu"))
        count += images[-1].shape[0]
        if count >= n:
            break
    if epoch is not None:
        loader.set_epoch(epoch)
    if not images:
        raise ConfigError(f"split {split!r} of {bundle.name} has no images to preview")
    return save_batch_grid(
        torch.cat(images), torch.cat(labels), bundle.class_names, path, mean=bundle.mean, std=bundle.std
    )
