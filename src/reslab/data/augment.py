"""Batched augmentation and normalisation with tensor ops, on whatever device the batch is on.

Every random choice is drawn up front by :func:`sample_augment_params` from an explicit
``torch.Generator`` (never the global RNG), so an epoch's augmentation is a pure function of that
generator's seed; the ops themselves are deterministic gathers and masks over the whole batch, with
no per-sample Python loop (the technique of airbench / hlb-CIFAR10).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def crop_padding_for(size: int) -> int:
    """The random-crop padding for ``size``-pixel images: 4 for 32 (the ResNet paper, Sec. 4.2), scaled
    as ``size / 8`` for other sizes, and 0 below 16 pixels where a shift would destroy the content."""
    if size < 16:
        return 0
    return int(size / 8 + 0.5)


@dataclass(frozen=True)
class AugmentSpec:
    """What the training loader does to each batch.

    Attributes:
        crop_padding: zero padding on each side before a random crop back to the input size (0: off).
        flip: random horizontal flip with probability 1/2.
        cutout: side of a square set to zero after normalisation (DeVries & Taylor 2017), centred
            uniformly over the image so it may be clipped at the border (0: off).
    """

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0

    @property
    def active(self) -> bool:
        """Whether the spec changes anything at all."""
        return self.crop_padding > 0 or self.flip or self.cutout > 0


@dataclass
class AugmentParams:
    """The random draws for ``n`` samples (CPU tensors, moved to the data's device once per epoch)."""

    offsets: torch.Tensor | None  # (n, 2) int64 crop offsets (top, left) in [0, 2 * padding]
    flips: torch.Tensor | None  # (n,) bool
    centres: torch.Tensor | None  # (n, 2) int64 cutout centres (row, column)

    def to(self, device: torch.device) -> AugmentParams:
        return AugmentParams(*(None if t is None else t.to(device) for t in (self.offsets, self.flips, self.centres)))

    def __getitem__(self, index: slice | torch.Tensor) -> AugmentParams:
        return AugmentParams(*(None if t is None else t[index] for t in (self.offsets, self.flips, self.centres)))


def sample_augment_params(
    spec: AugmentSpec, n: int, height: int, width: int, generator: torch.Generator
) -> AugmentParams:
    """Draw the crop offsets, flips and cutout centres of ``n`` samples from ``generator`` (CPU).

    The draws are made in a fixed order whatever the spec, so the same seed gives the same crops with or
    without cutout.
    """
    p = spec.crop_padding
    offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    centres = torch.stack(
        [
            torch.randint(0, height, (n,), generator=generator),
            torch.randint(0, width, (n,), generator=generator),
        ],
        dim=1,
    )
    return AugmentParams(
        offsets=offsets if p > 0 else None,
        flips=flips if spec.flip else None,
        centres=centres if spec.cutout > 0 else None,
    )


def random_crop(
    images: torch.Tensor, offsets: torch.Tensor | None, padding: int, flips: torch.Tensor | None = None
) -> torch.Tensor:
    """Zero-pad an NCHW batch by ``padding`` on every side and crop each image back at its own offset,
    mirroring (left-right) the images where ``flips`` is true, all in one gather.

    Args:
        images: (N, C, H, W) tensor of any dtype.
        offsets: (N, 2) int64 (top, left) offsets into the padded image, each in ``[0, 2 * padding]``;
            None for no crop (requires ``padding == 0``).
        padding: pixels added on each side.
        flips: optional (N,) bool.

    Returns:
        (N, C, H, W) contiguous tensor, same dtype and device.
    """
    n, c, h, w = images.shape
    if flips is None and (padding == 0 or offsets is None):
        return images
    device = images.device
    if offsets is None or padding == 0:
        offsets = torch.zeros(n, 2, dtype=torch.int64, device=device)
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    rows = offsets[:, 0, None] + ys  # (N, H)
    cols = offsets[:, 1, None] + xs  # (N, W)
    if flips is not None:
        cols = torch.where(flips[:, None], offsets[:, 1, None] + (w - 1 - xs), cols)
    # A flat gather per image (indexing with 4-D advanced indices is several times slower).
    index = (rows[:, :, None] * (w + 2 * padding) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)


def random_flip(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Mirror (left-right) the images of an NCHW batch where ``flips`` (N,) is true."""
    return torch.where(flips[:, None, None, None], images.flip(3), images)


def cutout(images: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """Set a ``size`` x ``size`` square around each image's centre (row, column) to zero, in all channels.

    The square spans rows ``[r - size // 2, r - size // 2 + size)`` (likewise columns), clipped to the
    image. Returns a new tensor.
    """
    if size <= 0:
        return images
    _, _, h, w = images.shape
    top = centres[:, 0, None] - size // 2
    left = centres[:, 1, None] - size // 2
    ys = torch.arange(h, device=images.device)[None, :]
    xs = torch.arange(w, device=images.device)[None, :]
    in_rows = (ys >= top) & (ys < top + size)  # (N, H)
    in_cols = (xs >= left) & (xs < left + size)  # (N, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return images.masked_fill(mask[:, None], 0.0)


def normalize(
    images: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """uint8 (or [0, 255] float) NCHW -> float32 ``(x / 255 - mean) / std``; mean/std are (C,) tensors.

    The result is a new tensor in ``memory_format`` (the one copy also makes a cropped view dense).
    """
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    shift = (-mean / std).view(1, -1, 1, 1)
    # copy=True: never scale a float input in place
    out = images.to(torch.float32, memory_format=memory_format, copy=True)
    return out.mul_(scale).add_(shift)


def apply_augment(
    images: torch.Tensor,
    params: AugmentParams,
    spec: AugmentSpec,
    mean: torch.Tensor,
    std: torch.Tensor,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """Crop and flip the uint8 batch, normalise it to float32, then apply cutout (zero = the mean colour)."""
    images = random_crop(images, params.offsets, spec.crop_padding if params.offsets is not None else 0, params.flips)
    out = normalize(images, mean, std, memory_format)
    if params.centres is not None:
        out = cutout(out, params.centres, spec.cutout)
    return out
