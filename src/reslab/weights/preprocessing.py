"""The preprocessing a set of weights expects: input size, resize and crop, interpolation, mean / std.

Every source's convention is expressed as reslab's one pipeline -- RGB pixels in [0, 1], resized, cropped,
then ``(x - mean) / std`` per channel -- and the source's own name for it is kept in ``mode``:

- ``torch`` (torchvision, timm, akamaster, Keras DenseNet): ImageNet mean / std;
- ``caffe`` (Keras ResNet v1, VGG): BGR, 0-255, the ImageNet mean subtracted, no scaling. reslab reverses
  the first convolution's input channels when it loads such weights, so the model takes RGB, and the
  mean / std become ``mean = (123.68, 116.779, 103.939) / 255``, ``std = 1 / 255``;
- ``tf`` (Keras ResNetV2): ``x / 127.5 - 1``, i.e. mean = std = 0.5.
``channel_order`` records the order the source's files expect (``BGR`` for caffe), for the record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN = (123.68 / 255, 116.779 / 255, 103.939 / 255)  # RGB order, [0, 1] units
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)

MODES = ("torch", "caffe", "tf", "reslab")
#: "center": resize the shorter side to ``resize``, then take the centre crop of ``input_size``;
#: "squash": resize the whole image to ``input_size`` (aspect ratio not kept), as Keras's
#: ``load_img(target_size=...)`` does
CROPS = ("center", "squash")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocessing:
    """What an image must go through before the weights see it (RGB, [0, 1] units, CHW).

    Attributes:
        input_size: (C, H, W) of the network's input.
        resize: the shorter side before the centre crop (``crop="center"``); ignored for ``"squash"``.
        crop: ``"center"`` or ``"squash"`` (see :data:`CROPS`).
        interpolation: ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.
        mean, std: per channel, in [0, 1] pixel units, RGB order.
        mode: the source's name for its normalisation (``torch``, ``caffe``, ``tf``; ``reslab`` for
            statistics a reslab run measured on its data).
        channel_order: the channel order the source's own pipeline feeds (``RGB`` or ``BGR``).
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    resize: int = 256
    crop: str = "center"
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    mode: str = "torch"
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("crop", self.crop, CROPS),
            ("interpolation", self.interpolation, INTERPOLATIONS),
            ("mode", self.mode, MODES),
            ("channel_order", self.channel_order, ("RGB", "BGR")),
        ):
            if value not in allowed:
                raise ConfigError(f"preprocessing {name} must be one of {', '.join(allowed)}, got {value!r}")
        c = self.input_size[0]
        if len(self.mean) != c or len(self.std) != c:
            raise ConfigError(f"preprocessing mean/std need {c} values (one per channel), got {self.mean} / {self.std}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types (lists, ints, floats, strings): for checkpoints, JSON and YAML."""
        d = asdict(self)
        d["input_size"] = [int(v) for v in self.input_size]
        d["mean"] = [float(v) for v in self.mean]
        d["std"] = [float(v) for v in self.std]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown preprocessing key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        kw = dict(d)
        for key in ("input_size", "mean", "std"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def describe(self) -> str:
        """One line, e.g. ``224x224 (resize 256, centre crop, bilinear), mean (0.485, ...) std (...) [torch]``."""
        c, h, w = self.input_size
        how = f"resize {self.resize}, centre crop" if self.crop == "center" else "squashed to size"
        mean = ", ".join(f"{m:.4g}" for m in self.mean)
        std = ", ".join(f"{s:.4g}" for s in self.std)
        return (
            f"{c}x{h}x{w} ({how}, {self.interpolation}), mean ({mean}) std ({std}) [{self.mode}, {self.channel_order}]"
        )


def channel_stats_for(mean, std, channels: int) -> tuple[list[float], list[float]]:
    """``mean`` / ``std`` for ``channels`` input channels: unchanged at their own count, else each the average
    over the weights' channels, repeated -- the statistics of an input convolution adapted by summing
    (1 channel) or repeating (more) the pretrained one's channels."""
    mean, std = [float(m) for m in mean], [float(s) for s in std]
    if channels == len(mean):
        return mean, std
    return [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels


def imagenet(resize: int = 256, size: int = 224, interpolation: str = "bilinear") -> Preprocessing:
    """torchvision's ImageNet evaluation preprocessing (``resize`` then a ``size`` centre crop)."""
    return Preprocessing(input_size=(3, size, size), resize=resize, interpolation=interpolation)
