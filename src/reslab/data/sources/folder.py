"""Image folders: how users train on their own pictures.

Layouts (class names are the sub-folder names, sorted; files may sit in nested folders):

* ``ROOT/train/<class>/*`` with ``ROOT/val/<class>/*`` (and optionally ``ROOT/test/<class>/*``);
* ``ROOT/train/<class>/*`` alone, or ``ROOT/<class>/*``: a stratified validation split with a fixed
  seed (``val_split``, 0.1 when 0).

With ``val_split > 0`` and ROOT/val present, validation comes out of ROOT/train and ROOT/val becomes
the test split (ROOT/test takes precedence when both exist).

Images (jpg, jpeg, png, bmp, gif, webp, tif, tiff, ppm, pgm; any case) are decoded with Pillow in the
DataLoader workers. Training: random-resized crop and flip; evaluation: shorter side to
``size / 0.875``, centre crop. Normalisation uses the ImageNet mean and std (the usual choice for
photographs, and what pretrained weights expect).

Files are checked when the folder is scanned (Pillow reads each header): one that is not a readable
image is skipped with a warning naming it, or raises :class:`DataError` with ``strict=True``. A file
that only fails when fully decoded (a truncated JPEG) is handled the same way at load time.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data
from PIL import Image

from ...errors import ConfigError, DataError
from ..bundle import DataBundle, LoaderOptions, make_info
from ..loader import FolderLoader
from ..transforms import IMAGE_ERRORS, MODES, EvalTransform, TrainTransform, eval_resize_for, open_image
from .base import stratified_split

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
DEFAULT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: grey images: the ImageNet statistics averaged over the channels
GREY_MEAN, GREY_STD = (0.449,), (0.226,)
SPLIT_SEED = 0
DEFAULT_VAL_SPLIT = 0.1

Sample = tuple[str, int]


def find_classes(directory: Path) -> list[str]:
    """Sorted names of the class sub-folders of ``directory`` (hidden folders are ignored).

    Raises:
        DataError: ``directory`` is missing or has no sub-folders.
    """
    if not directory.is_dir():
        raise DataError(f"image folder {directory} does not exist (expected one sub-folder per class)")
    classes = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"image folder {directory} has no class sub-folders (expected {directory}/<class>/*.jpg)")
    return classes


def _readable(path: Path) -> str | None:
    """None if Pillow can parse the header of ``path``, else the reason."""
    try:
        with Image.open(path) as img:
            img.size  # noqa: B018 - parsing the header is the check
        return None
    except IMAGE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"


def scan_split(directory: Path, class_names: Sequence[str], *, strict: bool = False) -> list[Sample]:
    """List ``(path, label)`` for every image under ``directory/<class>/``.

    Args:
        directory: a split folder with one sub-folder per class.
        class_names: the data set's classes; every sub-folder must be one of them.
        strict: raise on an unreadable image instead of warning and skipping it.

    Raises:
        DataError: unknown class folder, a class folder without images, or (strict) an unreadable image.
    """
    present = find_classes(directory)
    unknown = sorted(set(present) - set(class_names))
    if unknown:
        raise DataError(f"{directory} has class folders {unknown} that are not training classes ({list(class_names)})")
    samples: list[Sample] = []
    for label, name in enumerate(class_names):
        folder = directory / name
        if not folder.is_dir():
            continue
        files = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        )
        good = 0
        for path in files:
            reason = _readable(path)
            if reason is not None:
                if strict:
                    raise DataError(f"unreadable image {path}: {reason}")
                warnings.warn(f"skipping unreadable image {path}: {reason}", stacklevel=2)
                continue
            samples.append((str(path), label))
            good += 1
        if good == 0:
            extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise DataError(f"class folder {folder} contains no readable images (looked for {extensions})")
    return samples


class ImageFolderDataset(torch.utils.data.Dataset):
    """Decodes ``(path, label)`` samples with Pillow and applies a per-sample transform.

    Indexed with ``(index, epoch)`` keys (see :class:`reslab.data.loader.EpochSampler`): the transform's
    random generator is seeded from ``(seed, epoch, index)``. Returns ``(uint8 CHW tensor, label)``, or
    None for an image that fails to decode when ``strict`` is False (after a warning naming it).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Any,
        *,
        mode: str = "RGB",
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.mode = mode
        self.seed = seed
        self.strict = strict

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int] | None:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        path, label = self.samples[index]
        try:
            img = open_image(path, self.mode)
        except DataError as exc:
            if self.strict:
                raise
            warnings.warn(f"skipping {exc}", stacklevel=2)
            return None
        rng = np.random.default_rng([self.seed, epoch, index])
        return self.transform(img, rng), label


def _split_samples(samples: list[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    labels = np.array([label for _, label in samples], dtype=np.int64)
    keep, held = stratified_split(labels, fraction, SPLIT_SEED)
    return [samples[i] for i in keep], [samples[i] for i in held]


def build_folder_bundle(
    root: Path,
    opts: LoaderOptions,
    *,
    image_size: int | None,
    channels: int | None,
    workers: int,
    strict: bool,
) -> DataBundle:
    """Scan ``root`` and build the folder :class:`DataBundle` (see the module docstring for layouts)."""
    if opts.crop_padding is not None:
        raise ConfigError("crop_padding applies to array data sets; folder training uses random-resized crops")
    channels = channels or 3
    if channels not in (1, 3):
        raise ConfigError(f"folder images can be read with 1 (grey) or 3 (RGB) channels, not {channels}")
    if not root.is_dir():
        raise DataError(
            f"image folder ROOT {root} does not exist (expected ROOT/train/<class>/*.jpg "
            "and ROOT/val/<class>/..., or ROOT/<class>/*.jpg)"
        )
    train_dir = root / "train"
    has_train = train_dir.is_dir()
    if not has_train and ((root / "val").is_dir() or (root / "test").is_dir()):
        # ROOT/val without ROOT/train is a half-made split, not a class called "val"
        raise DataError(f"image folder ROOT {root} has val/ or test/ but no train/ (expected {train_dir})")
    base = train_dir if has_train else root
    class_names = find_classes(base)
    train = scan_split(base, class_names, strict=strict)
    official: dict[str, list[Sample]] = {}
    if has_train:
        for split in ("val", "test"):
            if (root / split).is_dir():
                official[split] = scan_split(root / split, class_names, strict=strict)
    splits: dict[str, list[Sample]] = {}
    if opts.val_split > 0 or not official:
        train, splits["val"] = _split_samples(train, opts.val_split if opts.val_split > 0 else DEFAULT_VAL_SPLIT)
        if official:
            splits["test"] = official.get("test", official.get("val", []))
    else:
        splits["val"] = official["val"] if "val" in official else official["test"]
        if "val" in official and "test" in official:
            splits["test"] = official["test"]
    if opts.limit is not None and opts.limit < len(train):
        # The scan is sorted by class; a fixed shuffle keeps a limited run's classes mixed.
        order = np.random.default_rng(SPLIT_SEED).permutation(len(train))[: opts.limit]
        train = [train[i] for i in sorted(order)]
    splits["train"] = train

    size = image_size or DEFAULT_SIZE
    resize = eval_resize_for(size)
    mode = MODES[channels]
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (GREY_MEAN, GREY_STD)
    eval_transform = EvalTransform(size, resize)

    def eval_factory(split: str):
        def make() -> FolderLoader:
            dataset = ImageFolderDataset(splits[split], eval_transform, mode=mode, seed=opts.seed, strict=strict)
            return FolderLoader(
                dataset,
                batch_size=opts.eval_batch_size,
                mean=mean,
                std=std,
                device=opts.device,
                seed=opts.seed,
                workers=workers,
                channels_last=opts.channels_last,
            )

        return make

    factories = {split: eval_factory(split) for split in splits}
    train_transform = (
        TrainTransform(size, flip=True if opts.flip is None else opts.flip) if opts.augment else eval_transform
    )
    train_loader = FolderLoader(
        ImageFolderDataset(train, train_transform, mode=mode, seed=opts.seed, strict=strict),
        batch_size=opts.batch_size,
        mean=mean,
        std=std,
        device=opts.device,
        shuffle=True,
        seed=opts.seed,
        workers=workers,
        cutout=opts.cutout if opts.augment else 0,
        channels_last=opts.channels_last,
        persistent_workers=True,
    )
    val = factories["val"]()
    test = factories["test"]() if "test" in factories else None
    return DataBundle(
        train=train_loader,
        val=val,
        test=test,
        num_classes=len(class_names),
        class_names=class_names,
        input_size=(channels, size, size),
        mean=mean,
        std=std,
        name="folder",
        info=make_info("folder", class_names, (channels, size, size), mean, std, resize=resize),
        eval_factories=factories,
    )
