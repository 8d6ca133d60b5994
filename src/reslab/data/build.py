"""build_data: one call from a data set name and options to a :class:`DataBundle` of ready loaders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .augment import AugmentSpec, crop_padding_for
from .bundle import SPLITS, DataBundle, LoaderOptions, make_info
from .loader import DeviceLoader
from .sources.base import ArrayData, channel_stats, stratified_split

#: every name build_data accepts
DATASETS = ("cifar10", "cifar100", "digits", "fashion_mnist", "folder", "mnist", "synthetic")
#: fixed image sides: image_size may repeat them, nothing else
NATIVE_SIZE = {"cifar10": 32, "cifar100": 32, "mnist": 28, "fashion_mnist": 28}
#: channels of the data sets whose images have a fixed channel count (folder and synthetic: ``channels``)
DATA_CHANNELS = {"cifar10": 3, "cifar100": 3, "mnist": 1, "fashion_mnist": 1, "digits": 1}
#: the seed of every held-out validation split: fixed, so runs with different ``seed`` are validated
#: on the same images
SPLIT_SEED = 0
#: folder data sets without ROOT/val hold out this fraction when val_split is 0
FOLDER_DEFAULT_VAL_SPLIT = 0.1

# Options that change the data, and the data sets they apply to.
_APPLIES_TO: dict[str, tuple[str, ...]] = {
    "image_size": ("folder", "digits", "synthetic"),  # and the native size of the others (a no-op)
    "num_classes": ("synthetic",),
    "num_samples": ("synthetic",),
    "channels": ("synthetic", "folder"),
    "url": ("cifar10", "cifar100", "mnist", "fashion_mnist"),
    "pad_to_32": ("mnist", "fashion_mnist"),
    "cache": ("folder",),
    "cache_dir": ("folder",),
    "resize": ("folder",),
    "interpolation": ("folder",),
    "crop": ("folder",),
}


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
    url: str | None = None,
    batch_size: int = 128,
    eval_batch_size: int | None = None,
    device: str | torch.device = "cpu",
    augment: bool = True,
    cutout: int = 0,
    val_split: float = 0.0,
    seed: int = 0,
    workers: int = 0,
    strict: bool = False,
    image_size: int | None = None,
    num_classes: int | None = None,
    num_samples: int | None = None,
    channels: int | None = None,
    cifar100_labels: str = "fine",
    limit: int | None = None,
    split_for_eval: str | None = None,
    flip: bool | None = None,
    crop_padding: int | None = None,
    pad_to_32: bool = False,
    channels_last: bool = False,
    cache: bool | str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    image_size_reason: str | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    resize: int | None = None,
    interpolation: str | None = None,
    crop: str | None = None,
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
        url: override the download URL (cifar*: the archive; *mnist: the base URL of the four files).
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
        strict: folder: an unreadable image raises DataError instead of a warning and a skip.
        image_size: folder: crop size (default: the images' own size when they all share one, else 224;
            ``reslab.train`` passes the model's input size); digits: output side (default 8, native);
            synthetic: side (default 32).
        num_classes, num_samples, channels: synthetic only (defaults 10 classes, 1024 training
            images, 3 channels); ``channels`` also picks grey (1) or RGB (3) for folder.
        cifar100_labels: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).
        limit: keep only the first ``limit`` training samples (after the validation split; folder:
            of a fixed shuffle, since its files are sorted by class).
        split_for_eval: if set (``"train"``, ``"val"`` or ``"test"``), ``bundle.val`` is the evaluation
            loader of that split, for commands that evaluate whatever ``val`` is.
        flip, crop_padding: override the data set's default augmentation (see ``augment``).
        pad_to_32: mnist / fashion_mnist: zero-pad 28x28 to 32x32 (LeNet-5's input size).
        channels_last: deliver batches in ``torch.channels_last`` memory format.
        cache: folder: decode the images once into the array cache and train from device-resident
            arrays (True), decode every image every epoch (False), or ``"auto"``/None (the default):
            the cache for images of at most 64 px whose array fits 4 GiB.
        cache_dir: folder: the array cache's directory (default ``$RESLAB_CACHE_DIR``, else
            ``~/.cache/reslab/arrays``).
        image_size_reason: folder: why the caller chose ``image_size``, for ``bundle.notes``.
        mean, std: per-channel normalisation in [0, 1] pixel units (e.g. pretrained weights'); default:
            the training split's own statistics (folder: ImageNet's).
        resize: folder: the shorter side before the evaluation centre crop (default: the image size for
            images up to 64 px, else ``size / 0.875``).
        interpolation: folder: ``bilinear`` (default), ``bicubic`` or ``nearest``, for every resize.
        crop: folder: ``center`` (default: resize the shorter side, centre crop) or ``squash`` (resize the
            whole image to the size, as Keras's preprocessing does).

    Returns:
        A :class:`DataBundle`.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or a bad option.
        DataError: missing or corrupt files (the message names them).
        ChecksumError: a download whose MD5 does not match.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; valid names: {', '.join(list_datasets())}")
    given = {
        "image_size": image_size,
        "num_classes": num_classes,
        "num_samples": num_samples,
        "channels": channels,
        "url": url,
        "pad_to_32": pad_to_32 or None,
        "cache": cache,
        "cache_dir": cache_dir,
        "resize": resize,
        "interpolation": interpolation,
        "crop": crop,
    }
    if name in NATIVE_SIZE and image_size == NATIVE_SIZE[name] + (4 if pad_to_32 else 0):
        given["image_size"] = None  # asking for the size the data already has
    for option, value in given.items():
        if value is not None and name not in _APPLIES_TO[option]:
            applies = ", ".join(_APPLIES_TO[option])
            native = f" ({name} images are {NATIVE_SIZE[name]} px)" if option == "image_size" else ""
            raise ConfigError(f"option {option}={value!r} does not apply to {name}{native}; it applies to {applies}")
    norm = _check_norm(mean, std)
    if interpolation is not None and interpolation not in ("nearest", "bilinear", "bicubic"):
        raise ConfigError(f"interpolation must be one of nearest, bilinear, bicubic, got {interpolation!r}")
    if crop is not None and crop not in ("center", "squash"):
        raise ConfigError(f"crop must be center or squash, got {crop!r}")
    if cifar100_labels not in ("fine", "coarse"):
        raise ConfigError(f"cifar100_labels must be 'fine' or 'coarse', got {cifar100_labels!r}")
    if cifar100_labels != "fine" and name != "cifar100":
        raise ConfigError(f"cifar100_labels={cifar100_labels!r} applies to cifar100 only, not {name}")
    for option, value, low in (
        ("batch_size", batch_size, 1),
        ("eval_batch_size", eval_batch_size, 1),
        ("image_size", image_size, 1),
        ("num_classes", num_classes, 2),
        ("num_samples", num_samples, 1),
        ("channels", channels, 1),
        ("limit", limit, 1),
        ("cutout", cutout, 0),
        ("seed", seed, 0),
        ("workers", workers, 0),
        ("crop_padding", crop_padding, 0),
        ("resize", resize, 1),
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
    options = LoaderOptions(
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
            options,
            image_size=image_size,
            channels=channels,
            workers=workers,
            strict=strict,
            image_size_reason=image_size_reason,
            cache=cache,
            cache_dir=cache_dir,
            norm=norm,
            resize=resize,
            interpolation=interpolation or "bilinear",
            crop=crop or "center",
        )
    else:
        data = _load_arrays(
            name,
            root,
            download=download,
            url=url,
            image_size=image_size,
            num_classes=num_classes,
            num_samples=num_samples,
            channels=channels,
            cifar100_labels=cifar100_labels,
            pad_to_32=pad_to_32,
            seed=seed,
        )
        bundle = array_bundle(name, data, options, norm=norm)
    if split_for_eval is not None:
        bundle.val = bundle.loader(split_for_eval)
    return bundle


def _load_arrays(name: str, root: Path, *, download: bool, url: str | None, **kw: Any) -> ArrayData:
    if name == "synthetic":
        from .sources import synthetic

        return synthetic.make_synthetic_data(
            num_classes=kw["num_classes"] or synthetic.DEFAULT_CLASSES,
            num_samples=kw["num_samples"] or synthetic.DEFAULT_TRAIN,
            image_size=kw["image_size"] or synthetic.DEFAULT_SIZE,
            channels=kw["channels"] or synthetic.DEFAULT_CHANNELS,
            seed=kw["seed"],
        )
    if name == "digits":
        from .sources.digits import load_digits_data

        return load_digits_data(kw["image_size"])
    if name in ("cifar10", "cifar100"):
        from .sources.cifar import load_cifar

        return load_cifar(name, root, download=download, url=url, labels=kw["cifar100_labels"])
    from .sources.mnist import load_mnist

    return load_mnist(name, root, download=download, url=url, pad_to_32=kw["pad_to_32"])


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


def check_norm_channels(norm: tuple[tuple[float, ...], tuple[float, ...]] | None, channels: int, name: str) -> None:
    """Refuse mean / std of another channel count than the data's ``channels``."""
    if norm is not None and len(norm[0]) != channels:
        raise ConfigError(f"mean/std have {len(norm[0])} values, but {name} images have {channels} channel(s)")


def array_bundle(
    name: str, data: ArrayData, opts: LoaderOptions, *, norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None
) -> DataBundle:
    """Split, move to ``opts.device`` and wrap an :class:`ArrayData` in :class:`DeviceLoader` s (normalised
    with ``norm = (mean, std)`` if given, else the training split's statistics)."""
    train_x, train_y = data.train_images, data.train_labels
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if opts.val_split > 0:
        keep, held = stratified_split(train_y, opts.val_split, SPLIT_SEED)
        splits["val"] = (train_x[held], train_y[held])
        splits["test"] = (data.test_images, data.test_labels)
        train_x, train_y = train_x[keep], train_y[keep]
    else:
        splits["val"] = (data.test_images, data.test_labels)
    if opts.limit is not None:
        train_x, train_y = train_x[: opts.limit], train_y[: opts.limit]
    splits["train"] = (train_x, train_y)
    tensors = to_device(splits, opts.device)
    c, h, w = data.input_size
    check_norm_channels(norm, c, name)
    mean, std = norm if norm is not None else channel_stats(tensors["train"][0])
    factories, train = device_loaders(tensors, opts, mean, std, flip=data.flip)
    bundle = DataBundle(
        train=train,
        val=factories["val"](),
        test=factories["test"]() if "test" in factories else None,
        num_classes=len(data.class_names),
        class_names=list(data.class_names),
        input_size=(c, h, w),
        mean=mean,
        std=std,
        name=name,
        info=make_info(name, data.class_names, (c, h, w), mean, std, resize=h),
        val_is_test="test" not in splits,  # no validation split held out: "val" is the official test split
        eval_factories=factories,
    )
    return bundle


def to_device(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each split's uint8 images and labels as tensors on ``device`` (labels as int64)."""
    return {
        split: (
            torch.from_numpy(_writable(x)).to(device),
            torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device),
        )
        for split, (x, y) in splits.items()
    }


def device_loaders(
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]],
    opts: LoaderOptions,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    flip: bool,
) -> tuple[dict[str, Any], DeviceLoader]:
    """The device-resident loaders of in-memory splits (array data sets, and image folders through the
    array cache): an evaluation-loader factory per split, and the shuffled training loader with batched
    augmentation (padded random crop -- 4 px for 32 px images --, ``flip`` unless ``opts.flip`` says
    otherwise, cutout)."""
    h, w = tensors["train"][0].shape[-2:]
    spec = AugmentSpec(
        crop_padding=opts.crop_padding if opts.crop_padding is not None else crop_padding_for(min(h, w)),
        flip=flip if opts.flip is None else opts.flip,
        cutout=opts.cutout,
    )

    def eval_factory(split: str):
        def make() -> DeviceLoader:
            x, y = tensors[split]
            return DeviceLoader(
                x,
                y,
                batch_size=opts.eval_batch_size,
                mean=mean,
                std=std,
                seed=opts.seed,
                channels_last=opts.channels_last,
            )

        return make

    train = DeviceLoader(
        *tensors["train"],
        batch_size=opts.batch_size,
        mean=mean,
        std=std,
        shuffle=True,
        augment=spec if opts.augment else None,
        seed=opts.seed,
        channels_last=opts.channels_last,
    )
    return {split: eval_factory(split) for split in tensors}, train


def _writable(array: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable array (torch.from_numpy warns on read-only buffers)."""
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()
