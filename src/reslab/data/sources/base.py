"""What every array source returns, and the small array utilities the sources and the builder share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ArrayData:
    """An in-memory data set as its files define it: the official train and test splits.

    Attributes:
        train_images, test_images: uint8 arrays (N, C, H, W).
        train_labels, test_labels: int64 arrays (N,).
        class_names: one name per class, index = label.
        flip: whether a horizontal flip preserves the label (False for digits and characters).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    flip: bool = True

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(f"{split}_images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
            if labels.shape != (images.shape[0],):
                raise ValueError(f"{split}_labels must have shape ({images.shape[0]},), got {labels.shape}")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            shapes = f"{self.train_images.shape} vs {self.test_images.shape}"
            raise ValueError(f"train and test image shapes differ: {shapes}")

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held_out) with about ``fraction`` of every class held out.

    Each class with at least two samples gives ``round(fraction * count)`` samples (at least one) to the
    held-out part; which ones is fixed by ``seed``. Both index arrays are sorted, so the original file
    order is kept inside each part.
    """
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < 2:
            continue
        count = min(max(1, int(round(fraction * len(members)))), len(members) - 1)
        held.append(rng.choice(members, size=count, replace=False))
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep_mask = np.ones(len(labels), dtype=bool)
    keep_mask[held_out] = False
    return np.flatnonzero(keep_mask), held_out


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation, in [0, 1] units, of a uint8 (N, C, H, W) tensor.

    Accumulates over chunks so a large data set on the GPU needs no full float copy.
    """
    c = images.shape[1]
    # float64 for exact sums of squares, except on Apple's MPS, which has no float64
    dtype = torch.float32 if images.device.type == "mps" else torch.float64
    total = torch.zeros(c, dtype=dtype, device=images.device)
    squares = torch.zeros(c, dtype=dtype, device=images.device)
    for start in range(0, images.shape[0], chunk):
        x = images[start : start + chunk].to(dtype)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    var = (squares / count - mean.square()).clamp_min(0.0)
    # A constant channel would divide by zero when normalising; 1/255 keeps it finite.
    std = var.sqrt().clamp_min(1.0)
    return tuple((mean / 255.0).tolist()), tuple((std / 255.0).tolist())


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 (N, C, H, W) array to ``size`` x ``size`` (bilinear, antialiased when shrinking)."""
    if images.shape[2] == size and images.shape[3] == size:
        return images
    x = torch.from_numpy(images).to(torch.float32)
    shrinking = size < max(images.shape[2], images.shape[3])
    y = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)
    return y.round().clamp(0, 255).to(torch.uint8).numpy()
