"""The options that belong to one kind of data source, one object per source.

:func:`reslab.data.build_data` takes the options every data set shares (batch sizes, device, augmentation,
validation split, image size, normalisation) as its own arguments; what only one source understands
(an image folder's array cache, the synthetic set's class count, MNIST's padding, a download mirror) goes
into that source's options object -- given as ``options=FolderOptions(...)`` or as plain keywords
(``build_data("folder", root, cache=False)``, ``--data-arg cache=false``), which :func:`source_options`
sorts into the object and refuses, naming the sources it applies to, where the source has no such option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
CROPS = ("center", "squash")


def _check_int(option: str, value: Any, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ConfigError(f"{option} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class SourceOptions:
    """No options of its own (``digits``)."""


@dataclass(frozen=True)
class DownloadOptions(SourceOptions):
    """The official archives' sources (cifar*, *mnist).

    Attributes:
        url: override the download URL (cifar*: the archive; *mnist: the base URL of the four files).
    """

    url: str | None = None


@dataclass(frozen=True)
class CifarOptions(DownloadOptions):
    """CIFAR-10."""


@dataclass(frozen=True)
class Cifar100Options(DownloadOptions):
    """CIFAR-100.

    Attributes:
        cifar100_labels: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).
    """

    cifar100_labels: str = "fine"

    def __post_init__(self) -> None:
        if self.cifar100_labels not in ("fine", "coarse"):
            raise ConfigError(f"cifar100_labels must be 'fine' or 'coarse', got {self.cifar100_labels!r}")


@dataclass(frozen=True)
class MnistOptions(DownloadOptions):
    """MNIST and Fashion-MNIST.

    Attributes:
        pad_to_32: zero-pad the 28x28 images to 32x32 (LeNet-5's input size).
    """

    pad_to_32: bool = False


@dataclass(frozen=True)
class SyntheticOptions(SourceOptions):
    """The synthetic data set (random class-coloured patterns; for tests and benchmarks).

    Attributes:
        num_classes: classes (default 10). num_samples: training images (default 1024).
        channels: 1 or 3 (default 3).
    """

    num_classes: int | None = None
    num_samples: int | None = None
    channels: int | None = None

    def __post_init__(self) -> None:
        for option, low in (("num_classes", 2), ("num_samples", 1), ("channels", 1)):
            _check_int(option, getattr(self, option), low)


@dataclass(frozen=True)
class FolderOptions(SourceOptions):
    """Image folders (a directory or a .zip / .tar / .tar.gz of class folders).

    Attributes:
        channels: read the images grey (1) or RGB (3, the default).
        strict: an unreadable image raises DataError instead of a warning and a skip.
        cache: decode the images once into the array cache and train from device-resident arrays (True),
            decode every image every epoch (False), or ``"auto"``/None (the default): the cache for images
            of at most 64 px whose array fits 4 GiB.
        cache_dir: the array cache's directory (default ``$RESLAB_CACHE_DIR``, else ``~/.cache/reslab/arrays``).
        resize: the shorter side before the evaluation centre crop (default: the image size for images up
            to 64 px, else ``size / 0.875``).
        interpolation: ``bilinear`` (default), ``bicubic`` or ``nearest``, for every resize.
        crop: ``center`` (default: resize the shorter side, centre crop) or ``squash`` (resize the whole
            image to the size, as Keras's preprocessing does).
    """

    channels: int | None = None
    strict: bool = False
    cache: bool | str | None = None
    cache_dir: str | os.PathLike[str] | None = None
    resize: int | None = None
    interpolation: str | None = None
    crop: str | None = None

    def __post_init__(self) -> None:
        _check_int("channels", self.channels, 1)
        _check_int("resize", self.resize, 1)
        if self.interpolation is not None and self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.crop is not None and self.crop not in CROPS:
            raise ConfigError(f"crop must be center or squash, got {self.crop!r}")


#: every data set's options class
SOURCE_OPTIONS: dict[str, type[SourceOptions]] = {
    "cifar10": CifarOptions,
    "cifar100": Cifar100Options,
    "digits": SourceOptions,
    "fashion_mnist": MnistOptions,
    "folder": FolderOptions,
    "mnist": MnistOptions,
    "synthetic": SyntheticOptions,
}


def option_types() -> dict[str, Any]:
    """Every source option's name and type annotation (the keywords :func:`options_for` sorts)."""
    import typing

    types: dict[str, Any] = {}
    for cls in SOURCE_OPTIONS.values():
        hints = typing.get_type_hints(cls)
        types.update({f.name: hints.get(f.name) for f in fields(cls)})
    return types


def _applies_to(option: str) -> list[str]:
    return [name for name, cls in SOURCE_OPTIONS.items() if option in {f.name for f in fields(cls)}]


def _is_default(option: str, value: Any) -> bool:
    """Whether ``value`` is ``option``'s default (``strict=False``, ``pad_to_32=False``, ``"fine"``) in the
    classes that have it: asking for the default is not asking for the option."""
    for cls in SOURCE_OPTIONS.values():
        for f in fields(cls):
            if f.name == option:
                return f.default is not None and type(value) is type(f.default) and value == f.default
    return False


def options_for(name: str, options: SourceOptions | None = None, **given: Any) -> SourceOptions:
    """Data set ``name``'s options object: ``options`` if given, else made from the keywords ``given``
    (a keyword set to None counts as not given).

    Raises:
        ConfigError: a keyword the source has no option for (naming the sources it applies to), options of
            another source's class, or a bad value.
    """
    cls = SOURCE_OPTIONS[name]
    given = {k: v for k, v in given.items() if v is not None and not _is_default(k, v)}
    if options is not None:
        if type(options) is not cls:
            raise ConfigError(f"{name} takes {cls.__name__}, got {type(options).__name__}")
        if given:
            raise ConfigError(f"give {name}'s options as options= or as keywords, not both ({', '.join(given)})")
        return options
    own = {f.name for f in fields(cls)}
    for option, value in given.items():
        if option not in own:
            applies = _applies_to(option)
            if not applies:
                raise ConfigError(f"unknown data option {option!r}")
            raise ConfigError(f"option {option}={value!r} does not apply to {name}; it applies to {', '.join(applies)}")
    return cls(**given)
