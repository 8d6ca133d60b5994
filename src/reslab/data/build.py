"""build_data: one call from a data set name and options to a :class:`DataBundle` of ready loaders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, DataError
from .arrays import array_bundle
from .bundle import SPLITS, DataBundle, LoaderOptions
from .options import SourceOptions, options_for
from .sources.base import ArrayData

#: every name build_data accepts
DATASETS = ("cifar10", "cifar100", "digits", "fashion_mnist", "folder", "mnist", "synthetic")
#: fixed image sides: image_size may repeat them, nothing else
NATIVE_SIZE = {"cifar10": 32, "cifar100": 32, "mnist": 28, "fashion_mnist": 28}
#: channels of the data sets whose images have a fixed channel count (folder and synthetic: ``channels``)
DATA_CHANNELS = {"cifar10": 3, "cifar100": 3, "mnist": 1, "fashion_mnist": 1, "digits": 1}
#: folder data sets without ROOT/val hold out this fraction when val_split is 0
FOLDER_DEFAULT_VAL_SPLIT = 0.1
#: the data sets whose sources make their images at ``image_size`` (the others are resized on the device)
SOURCE_SIZED = ("folder", "digits", "synthetic")


def list_datasets() -> list[str]:
    """The names :func:`build_data` accepts, sorted."""
    return sorted(DATASETS)


def data_channels(name: str, channels: int | None = None) -> int:
    """The channel count of data set ``name``'s images (folder and synthetic: ``channels``, default 3)."""
    return DATA_CHANNELS.get(name, channels or 3)


def default_data_dir() -> Path:
    """Where data sets live when ``data_dir`` is not given: ``$RESLAB_DATA_DIR``, else ``./data``."""
    return Path(os.environ.get("RESLAB_DATA_DIR", "data"))


def build_data(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    batch_size: int = 128,
    eval_batch_size: int | None = None,
    device: str | torch.device = "cpu",
    augment: bool = True,
    cutout: int = 0,
    val_split: float = 0.0,
    seed: int = 0,
    workers: int = 0,
    image_size: int | None = None,
    limit: int | None = None,
    split_for_eval: str | None = None,
    flip: bool | None = None,
    crop_padding: int | None = None,
    channels_last: bool = False,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    image_size_reason: str | None = None,
    options: SourceOptions | None = None,
    **source_options: Any,
) -> DataBundle:
    """Load a data set and wrap it in training and evaluation loaders.

    Args:
        name: one of :func:`list_datasets`.
        data_dir: root directory (default :func:`default_data_dir`). cifar10: the folder that contains
            ``cifar-10-batches-py`` or that folder itself (likewise ``cifar-100-python``); mnist /
            fashion_mnist: the folder with the four IDX files, or its ``<name>/``, ``<name>/raw/`` or
            torchvision-style ``MNIST/raw/`` subfolder; folder: ROOT, a directory or a .zip / .tar /
            .tar.gz of class folders read without extracting it (see :mod:`reslab.data.sources.folder`).
        download: fetch the official files when missing (cifar*, *mnist), check their MD5, extract
            safely; a no-op for data sets that need no files.
        batch_size: training batch size; ``eval_batch_size`` defaults to it.
        device: where array data sets live (as uint8) and where every batch is delivered.
        augment: training augmentation. Array data: random crop with zero padding (4 px for 32 px
            images, ``size / 8`` otherwise, 0 below 16 px; override with ``crop_padding``) and
            horizontal flip (off by default for digits and mnist; override with ``flip``). Folder:
            random-resized crop plus flip.
        cutout: side of the cutout square in pixels (0: off); applied when ``augment`` is on.
        val_split: fraction of the training split held out (stratified, fixed seed) as validation;
            0 makes the official test split the validation split (then ``test`` is None). A folder
            without ROOT/val uses 0.1 when this is 0.
        seed: with the epoch, fixes shuffling and augmentation (and the images of ``synthetic``).
        workers: DataLoader worker processes (folder only; ignored elsewhere).
        image_size: the side of the images the loaders deliver. Folder: the crop size (default: the images' own
            size when they all share one, else 224; ``reslab.train`` passes the model's input size); digits:
            output side (default 8, native); synthetic: side (default 32); CIFAR and MNIST keep their native
            uint8 arrays on the device and resize every batch there (bilinear, antialiased when shrinking,
            after the augmentation), e.g. to a pretrained ImageNet network's 224.
        image_size_reason: why the caller chose ``image_size``, for the bundle's notes.
        limit: keep only the first ``limit`` training samples (after the validation split; folder:
            of a fixed shuffle, since its files are sorted by class).
        split_for_eval: if set (``"train"``, ``"val"`` or ``"test"``), ``bundle.val`` is the evaluation
            loader of that split, for commands that evaluate whatever ``val`` is.
        flip, crop_padding: override the data set's default augmentation (see ``augment``).
        channels_last: deliver batches in ``torch.channels_last`` memory format.
        mean, std: per-channel normalisation in [0, 1] pixel units (e.g. pretrained weights'); default:
            the training split's own statistics (folder: ImageNet's).
        options: the source's own options (:mod:`reslab.data.options`: :class:`FolderOptions`,
            :class:`SyntheticOptions`, :class:`MnistOptions`, ...); or give them as keywords
            (``source_options``): ``url`` (cifar*, *mnist: a download mirror), ``cifar100_labels``
            (``fine`` / ``coarse``), ``pad_to_32`` (*mnist), ``num_classes`` / ``num_samples`` /
            ``channels`` (synthetic), ``channels`` / ``strict`` / ``cache`` / ``cache_dir`` / ``resize`` /
            ``interpolation`` / ``crop`` (folder).

    Returns:
        A :class:`DataBundle`.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones), a bad option, or an option of
            another source (naming the sources it applies to).
        DataError: missing or corrupt files (the message names them).
        ChecksumError: a download whose MD5 does not match.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; valid names: {', '.join(list_datasets())}")
    opts = options_for(name, options, **source_options)
    native = NATIVE_SIZE.get(name)
    if native is not None and image_size == native + (4 if getattr(opts, "pad_to_32", False) else 0):
        image_size = None  # asking for the size the data already has
    norm = _check_norm(mean, std)
    for option, value, low in (
        ("batch_size", batch_size, 1),
        ("eval_batch_size", eval_batch_size, 1),
        ("image_size", image_size, 1),
        ("limit", limit, 1),
        ("cutout", cutout, 0),
        ("seed", seed, 0),
        ("workers", workers, 0),
        ("crop_padding", crop_padding, 0),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigError(f"{option} must be an integer >= {low}, got {value!r}")
    try:
        val_split = 0.0 if val_split is None else float(val_split)
    except (TypeError, ValueError):
        raise ConfigError(f"val_split must be a number in [0, 1), got {val_split!r}") from None
    if not 0.0 <= val_split < 1.0:
        raise ConfigError(f"val_split must be in [0, 1), got {val_split!r}")
    if split_for_eval is not None and split_for_eval not in SPLITS:
        raise ConfigError(f"split_for_eval must be one of {', '.join(SPLITS)}, got {split_for_eval!r}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"bad device {device!r}: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested, but CUDA is not available here")

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    check_data_root(name, root)
    loader_options = LoaderOptions(
        batch_size=batch_size,
        eval_batch_size=eval_batch_size or batch_size,
        device=device,
        augment=augment,
        cutout=cutout,
        val_split=val_split,
        seed=seed,
        limit=limit,
        flip=flip,
        crop_padding=crop_padding,
        channels_last=channels_last,
    )
    if name == "folder":
        from .sources.folder import build_folder_bundle

        bundle = build_folder_bundle(
            root,
            loader_options,
            opts,
            image_size=image_size,
            workers=workers,
            norm=norm,
            image_size_reason=image_size_reason,
        )
    else:
        source_size = image_size if name in SOURCE_SIZED else None
        data = _load_arrays(name, root, opts, download=download, image_size=source_size, seed=seed)
        resize = image_size if name not in SOURCE_SIZED else None
        bundle = array_bundle(name, data, loader_options, norm=norm, resize=resize)
        if resize is not None:
            _, h, w = data.input_size
            why = f": {image_size_reason}" if image_size_reason else " (image_size given)"
            bundle.notes.append(f"images {h}x{w} -> {resize}x{resize}{why}; resized on the device, bilinear")
    if split_for_eval is not None:
        bundle.val = bundle.loader(split_for_eval)
    return bundle


def check_data_root(name: str, root: Path) -> None:
    """Refuse a data directory that is an existing file the data set cannot read (an image, say): the folder
    data set takes a folder or an archive, the others a folder (digits and synthetic read none).

    Raises:
        DataError: one line naming the file and what the data set takes.
    """
    if name in ("digits", "synthetic") or not root.is_file():
        return
    from .sources.files import ARCHIVE_SUFFIXES, is_archive

    if name == "folder":
        if is_archive(root):
            return
        raise DataError(
            f"data dir {root} is a file, not a folder or archive ({', '.join(ARCHIVE_SUFFIXES)}): give the folder "
            "holding ROOT/train/<class>/*.jpg (and ROOT/val/...) or ROOT/<class>/*.jpg, or an archive of it"
        )
    raise DataError(f"data dir {root} is a file, not a folder: give the folder {name} lives in (--data-dir DIR)")


def _load_arrays(
    name: str, root: Path, opts: SourceOptions, *, download: bool, image_size: int | None, seed: int
) -> ArrayData:
    if name == "synthetic":
        from .sources import synthetic

        return synthetic.make_synthetic_data(
            num_classes=opts.num_classes or synthetic.DEFAULT_CLASSES,
            num_samples=opts.num_samples or synthetic.DEFAULT_TRAIN,
            image_size=image_size or synthetic.DEFAULT_SIZE,
            channels=opts.channels or synthetic.DEFAULT_CHANNELS,
            seed=seed,
        )
    if name == "digits":
        from .sources.digits import load_digits_data

        return load_digits_data(image_size)
    if name in ("cifar10", "cifar100"):
        from .sources.cifar import load_cifar

        labels = getattr(opts, "cifar100_labels", "fine")
        return load_cifar(name, root, download=download, url=opts.url, labels=labels)
    from .sources.mnist import load_mnist

    return load_mnist(name, root, download=download, url=opts.url, pad_to_32=opts.pad_to_32)


def _check_norm(mean: Any, std: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` as tuples of floats, or None when neither is given.

    Raises:
        ConfigError: only one of them, not lists of numbers, different lengths, or a std <= 0.
    """
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        given, missing = ("mean", "std") if std is None else ("std", "mean")
        raise ConfigError(f"{given} was given without {missing}: give both (one value per channel)")
    values = []
    for key, value in (("mean", mean), ("std", std)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if (
            not isinstance(value, (list, tuple))
            or not value
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise ConfigError(
                f"{key} must be a list of numbers, one per channel (e.g. [0.485, 0.456, 0.406]), got {value!r}"
            )
        values.append(tuple(float(v) for v in value))
    if len(values[0]) != len(values[1]):
        raise ConfigError(f"mean has {len(values[0])} values but std has {len(values[1])}: one per channel each")
    if any(not (v > 0) for v in values[1]):
        raise ConfigError(f"std values must be > 0, got {list(values[1])}")
    return values[0], values[1]
