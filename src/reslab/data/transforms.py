"""Per-image transforms with Pillow (for image folders and for ``reslab predict``).

The training transform is the Inception-style random-resized crop plus horizontal flip; the evaluation
transform resizes the shorter side to ``size / 0.875`` and takes the centre crop (the usual ImageNet
protocol). Transforms take an explicit ``numpy.random.Generator`` so that a sample's augmentation is a
pure function of (seed, epoch, index), whatever DataLoader worker decodes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError

#: eval resize = crop size / this ratio (224 -> 256)
CROP_RATIO = 0.875
#: Pillow modes for a channel count
MODES = {1: "L", 3: "RGB", 4: "RGBA"}
#: Pillow's resampling filters by name (the preprocessing's ``interpolation``)
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
#: "center": shorter side resized, then the centre crop; "squash": the whole image resized to the size
CROP_MODES = ("center", "squash")
#: what Pillow raises on files it cannot decode
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError)


def eval_resize_for(size: int) -> int:
    """Shorter side before the evaluation centre crop of ``size`` pixels (``size / 0.875``)."""
    return int(math.floor(size / CROP_RATIO + 0.5))


def resample_filter(interpolation: str) -> Image.Resampling:
    """Pillow's filter for ``"nearest"``, ``"bilinear"`` or ``"bicubic"``.

    Raises:
        ConfigError: another name.
    """
    try:
        return INTERPOLATIONS[interpolation]
    except (KeyError, TypeError):
        raise ConfigError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}") from None


def resize_shorter(img: Image.Image, size: int, interpolation: str = "bilinear") -> Image.Image:
    """Resize so the shorter side is ``size`` pixels, keeping the aspect ratio (antialiased)."""
    w, h = img.size
    if min(w, h) == size:
        return img
    scale = size / min(w, h)
    new = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return img.resize(new, resample_filter(interpolation))


def eval_view(
    img: Image.Image, height: int, width: int, resize: int, interpolation: str = "bilinear", crop: str = "center"
) -> Image.Image:
    """The evaluation view of an image: ``crop="center"``: the shorter side resized to ``resize`` (at least
    the crop), then the centre ``height`` x ``width``; ``crop="squash"``: the whole image resized to
    ``width`` x ``height`` (aspect ratio not kept, as Keras's ``load_img(target_size=...)``)."""
    if crop == "squash":
        return img if img.size == (width, height) else img.resize((width, height), resample_filter(interpolation))
    if crop != "center":
        raise ConfigError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")
    return center_crop(resize_shorter(img, max(resize, height, width), interpolation), height, width)


def center_crop(img: Image.Image, height: int, width: int) -> Image.Image:
    """The central ``height`` x ``width`` region (zero-padded by Pillow if the image is smaller)."""
    w, h = img.size
    left = int(round((w - width) / 2.0))
    top = int(round((h - height) / 2.0))
    return img.crop((left, top, left + width, top + height))


def random_resized_crop(
    img: Image.Image,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    interpolation: str = "bilinear",
) -> Image.Image:
    """A random region of ``scale`` x the area and aspect ``ratio`` (log-uniform), resized to ``size``.

    Up to 10 tries to fit a region inside the image; otherwise the largest central region whose
    aspect is within ``ratio`` (Szegedy et al. 2015, as commonly implemented).
    """
    w, h = img.size
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            left = int(rng.integers(0, w - cw + 1))
            top = int(rng.integers(0, h - ch + 1))
            break
    else:
        in_ratio = w / h
        if in_ratio < ratio[0]:
            cw, ch = w, int(round(w / ratio[0]))
        elif in_ratio > ratio[1]:
            cw, ch = int(round(h * ratio[1])), h
        else:
            cw, ch = w, h
        left, top = (w - cw) // 2, (h - ch) // 2
    # ``box`` makes the crop and the resize one resampling step.
    return img.resize((size, size), resample_filter(interpolation), box=(left, top, left + cw, top + ch))


def to_uint8_chw(img: Image.Image) -> torch.Tensor:
    """A Pillow image -> uint8 (C, H, W) tensor."""
    arr = np.array(img, dtype=np.uint8)  # a writable copy (asarray may view Pillow's read-only buffer)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


class TrainTransform:
    """Random-resized crop to ``size`` plus optional horizontal flip; returns uint8 (C, H, W)."""

    def __init__(self, size: int, flip: bool = True, interpolation: str = "bilinear") -> None:
        self.size = size
        self.flip = flip
        self.interpolation = interpolation

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        out = random_resized_crop(img, self.size, rng, interpolation=self.interpolation)
        if self.flip and rng.random() < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_uint8_chw(out)


class EvalTransform:
    """Resize the shorter side to ``resize``, then centre-crop ``size`` (or, ``crop="squash"``, resize the
    whole image to ``size``); returns uint8 (C, H, W)."""

    def __init__(
        self, size: int, resize: int | None = None, interpolation: str = "bilinear", crop: str = "center"
    ) -> None:
        self.size = size
        self.resize = resize if resize is not None else eval_resize_for(size)
        self.interpolation = interpolation
        self.crop = crop

    def __call__(self, img: Image.Image, rng: np.random.Generator | None = None) -> torch.Tensor:
        return to_uint8_chw(eval_view(img, self.size, self.size, self.resize, self.interpolation, self.crop))


#: Pillow's 16-bit greyscale modes (16-bit PNG, TIFF and PGM files) and "I" (32-bit int, which Pillow
#: also uses for 16-bit PGM files): Pillow's own convert() clips them to 255, i.e. all white
WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def _wide_grey_to_l(img: Image.Image, name: str) -> Image.Image:
    """A 16-bit greyscale image scaled (not clipped) to 8 bits: the top byte of each value."""
    arr = np.asarray(img)
    if img.mode == "I":
        # Pillow's "I" holds 16-bit data in practice (16-bit PGM); wider values have no known range
        low, high = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if low < 0 or high > 0xFFFF:
            raise DataError(
                f"cannot read image {name}: 32-bit greyscale values in [{low}, {high}] exceed the 16-bit range "
                "0..65535 (convert it to an 8- or 16-bit image)"
            )
    return Image.fromarray((arr.astype(np.uint32) >> 8).astype(np.uint8), mode="L")


def convert_image(img: Image.Image, mode: str, name: str = "image") -> Image.Image:
    """Convert a decoded Pillow image to ``mode`` (``"L"``, ``"RGB"`` or ``"RGBA"``).

    16-bit greyscale (``I;16``, ``I;16B``, ``I;16L``, and ``I`` holding 16-bit values) is scaled to
    8 bits by its range (``value >> 8``); palette and alpha images go through RGBA so transparency is
    dropped rather than mis-mapped.

    Raises:
        DataError: an ``I`` image with values outside 0..65535 (names ``name``).
    """
    if img.mode in WIDE_GREY_MODES:
        img = _wide_grey_to_l(img, name)
    if mode in ("RGB", "L") and img.mode in ("P", "LA", "RGBA", "PA"):
        img = img.convert("RGBA")
    return img.convert(mode)


def open_image(path: str | Path | IO[bytes], mode: str, *, name: str | None = None) -> Image.Image:
    """Decode an image file (a path, or a binary file object such as an archive member's bytes) fully
    and convert it to ``mode`` (see :func:`convert_image`).

    Args:
        path: the file. mode: the Pillow mode wanted. name: how messages name the file (default ``path``).

    Raises:
        DataError: the file is missing, not an image, or truncated (names the file).
    """
    name = str(path) if name is None else name
    try:
        with Image.open(path) as img:
            img.load()
            return convert_image(img, mode, name)
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"image file not found: {name}") from exc
    except IMAGE_ERRORS as exc:
        raise DataError(f"cannot read image {name}: {exc}") from exc


def preprocess_image(image: str | Path | Image.Image, info: Mapping[str, Any]) -> torch.Tensor:
    """Turn an image file (or Pillow image) into the model's input, as at evaluation time.

    Converts to grey or RGB per ``info["input_size"]``, resizes the shorter side to ``info["resize"]``
    (default: the input height) with ``info["interpolation"]`` (default bilinear), centre-crops to the
    input size (or, ``info["crop_mode"] == "squash"``, resizes the whole image to it) and normalises with
    ``info["mean"]`` and ``info["std"]``.

    Args:
        image: a path or a ``PIL.Image.Image``.
        info: a :attr:`DataBundle.info` dict (as stored in a checkpoint).

    Returns:
        float32 tensor (1, C, H, W) on the CPU.

    Raises:
        DataError: the file cannot be read as an image (names it).
        ConfigError: ``info`` lacks input_size/mean/std or has an unsupported channel count.
    """
    try:
        c, h, w = (int(v) for v in info["input_size"])
        mean: Sequence[float] = [float(v) for v in info["mean"]]
        std: Sequence[float] = [float(v) for v in info["std"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"data info needs input_size (C, H, W), mean and std; got keys {sorted(info)}") from exc
    if c not in MODES:
        raise ConfigError(f"cannot preprocess images for {c} input channels (supported: {sorted(MODES)})")
    if len(mean) != c or len(std) != c:
        raise ConfigError(f"data info mean/std have {len(mean)}/{len(std)} values for {c} channels")
    mode = MODES[c]
    if isinstance(image, Image.Image):
        img = convert_image(image, mode)
    else:
        img = open_image(image, mode)
    resize = int(info.get("resize") or h)
    # the shorter side must cover the crop in both directions (eval_view takes the larger)
    interpolation, crop = str(info.get("interpolation") or "bilinear"), str(info.get("crop_mode") or "center")
    img = eval_view(img, h, w, resize, interpolation, crop)
    x = to_uint8_chw(img).to(torch.float32).div_(255.0)
    x = (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    return x.unsqueeze(0)
