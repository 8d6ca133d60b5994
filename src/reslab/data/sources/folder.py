"""Image folders: how users train on their own pictures, from a directory or an archive.

ROOT is a directory, or a ``.zip`` / ``.tar`` / ``.tar.gz`` / ``.tgz`` read in place without
extracting it (see :mod:`reslab.data.sources.files`: members are checked like a download's). Layouts
(class names are the sub-folder names, sorted; files may sit in nested folders):

* ``ROOT/train/<class>/*`` with ``ROOT/val/<class>/*`` (and optionally ``ROOT/test/<class>/*``);
* ``ROOT/train/<class>/*`` alone, or ``ROOT/<class>/*``: a stratified validation split with a fixed
  seed (``val_split``, 0.1 when 0).

An archive whose only top-level entry is one folder (``zip -r photos.zip photos/``) is read from
inside that folder. With ``val_split > 0`` and ROOT/val present, validation comes out of ROOT/train
and ROOT/val becomes the test split (ROOT/test takes precedence when both exist). A data set needs at
least two classes and a non-empty validation split: both are refused with a :class:`DataError`.

**Image size.** ``image_size`` if given (the trainer passes the model's registered input size);
otherwise the images' own size when they all share one (the shorter side if not square), else 224.

**Two loading paths.**

* *Array cache* (small images): every image is decoded once, resized to the image size (shorter side,
  centre crop), into a uint8 array saved in the cache directory (:mod:`reslab.data.cache`), and later
  runs load that array. Training then uses the device-resident array loader with batched augmentation
  (random crop with zero padding and flip, like CIFAR). ``cache="auto"`` (the default) takes this path
  when the image size is at most :data:`SMALL_IMAGE_MAX` px and the array fits
  :data:`CACHE_MEMORY_BUDGET`; ``cache=True`` forces it, ``cache=False`` refuses it.
* *Per-sample decoding* (photos): Pillow decodes each image in the DataLoader workers every epoch.
  Training: random-resized crop and flip. A compressed tar cannot be read this way (no random access).

Evaluation is the same on both paths: the shorter side resized to ``size`` for small images
(<= 64 px: the whole image, the CIFAR convention) or to ``size / 0.875`` (the ImageNet convention),
then the centre crop. Normalisation uses the ImageNet mean and std (the usual choice for photographs,
and what pretrained weights expect).

Unreadable files: a file whose header Pillow cannot parse (per-sample path: when the folder is
scanned) or that fails to decode (array cache: when it is built; per-sample: when it is loaded) is
skipped with a warning naming it, or raises :class:`DataError` with ``strict=True``.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
import torch.utils.data
from PIL import Image

from ...errors import ConfigError, DataError
from ..arrays import check_norm_channels, device_loaders, to_device
from ..bundle import DataBundle, LoaderOptions, make_info
from ..cache import cache_stem, default_cache_dir, load_entry, save_entry
from ..loader import MIN_TRAIN_BATCH, BatchLoader, FolderLoader
from ..options import FolderOptions
from ..transforms import IMAGE_ERRORS, MODES, EvalTransform, TrainTransform, eval_resize_for, open_image
from .base import stratified_split
from .files import FileTree, is_archive, open_tree

logger = logging.getLogger("reslab.data")


def log_skipped(name: str, reason: str) -> None:
    """One line for an image skipped as unreadable, naming the file and why: a log line, not a Python
    ``UserWarning``, whose display repeats a line of reslab's source."""
    for prefix in (f"cannot read image {name}: ", f"unreadable image {name}: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
    if reason == f"image file not found: {name}":
        reason = "file not found"
    logger.warning("skipped unreadable image %s: %s", name, reason)


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
DEFAULT_SIZE = 224
#: images up to this side are "small": evaluated whole, and cached as arrays by default
SMALL_IMAGE_MAX = 64
#: cache="auto" keeps a decoded array up to this many bytes
CACHE_MEMORY_BUDGET = 4 << 30
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: grey images: the ImageNet statistics averaged over the channels
GREY_MEAN, GREY_STD = (0.449,), (0.226,)
SPLIT_SEED = 0
DEFAULT_VAL_SPLIT = 0.1

#: (relative path in the tree, label)
Sample = tuple[str, int]


def folder_eval_resize(size: int) -> int:
    """Shorter side before the evaluation centre crop: ``size`` for small images, else ``size / 0.875``."""
    return size if size <= SMALL_IMAGE_MAX else eval_resize_for(size)


@dataclass
class Layout:
    """Where a tree's classes and splits are: ``splits`` maps ``train`` (and ``val``/``test`` when the
    tree has those folders) to its candidate image files with their labels."""

    tree: FileTree
    class_names: list[str]
    splits: dict[str, list[Sample]] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)  # split -> folder, for messages


def _is_image(rel: str) -> bool:
    return Path(rel).suffix.lower() in IMAGE_EXTENSIONS


def resolve_layout(tree: FileTree) -> Layout:
    """Find the classes and the split folders of ``tree`` (see the module docstring).

    Raises:
        DataError: no class folders, a single class, val/ or test/ without train/, an empty val/ or
            test/, a class folder of the training split without images, or val/test classes that are
            not training classes.
    """
    root = tree.root
    prefix = ""
    top = tree.subdirs("")
    top_files = [f for f in tree.files if "/" not in f and _is_image(f)]
    if tree.kind != "dir" and len(top) == 1 and not top_files and top[0] not in ("train", "val", "test"):
        prefix = top[0]  # an archive of one folder: read inside it
    join = (lambda *p: "/".join(x for x in (prefix, *p) if x)) if prefix else (lambda *p: "/".join(x for x in p if x))
    children = tree.subdirs(prefix)
    has_train = "train" in children
    if not has_train and ("val" in children or "test" in children):
        # ROOT/val without ROOT/train is a half-made split, not a class called "val"
        raise DataError(f"image folder ROOT {root} has val/ or test/ but no train/ (expected ROOT/train/<class>/...)")
    base = join("train") if has_train else join()
    class_names = tree.subdirs(base)
    where = tree.display(base) if base else str(root)
    if not class_names:
        raise DataError(f"image folder {where} has no class sub-folders (expected {where}/<class>/*.jpg)")
    if len(class_names) == 1:
        raise DataError(
            f"image folder {where} has one class folder ({class_names[0]}): a classifier needs at least two "
            "classes (one sub-folder per class)"
        )
    layout = Layout(tree, class_names)
    split_dirs = {"train": base}
    if has_train:
        for split in ("val", "test"):
            if split in children:
                split_dirs[split] = join(split)
    by_split: dict[str, dict[str, list[str]]] = {s: {} for s in split_dirs}
    for rel in tree.files:
        if not _is_image(rel):
            continue
        for split, folder in split_dirs.items():
            head = f"{folder}/" if folder else ""
            if rel.startswith(head):
                cls = rel[len(head) :].split("/", 1)
                if len(cls) == 2:
                    by_split[split].setdefault(cls[0], []).append(rel)
                break
    for split, folder in split_dirs.items():
        layout.folders[split] = folder
        present = tree.subdirs(folder)
        if split != "train":
            if not present or not by_split[split]:
                raise DataError(
                    f"the {split} split {tree.display(folder)} is empty (no class folders with images); "
                    f"fill it, or remove it to hold out part of train/ with val_split"
                )
            unknown = sorted(set(present) - set(class_names))
            if unknown:
                raise DataError(
                    f"{tree.display(folder)} has class folders {unknown} that are not training classes ({class_names})"
                )
        samples: list[Sample] = []
        for label, name in enumerate(class_names):
            files = sorted(by_split[split].get(name, []))
            if not files and split == "train":
                extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
                where = tree.display(f"{folder}/{name}" if folder else name)
                raise DataError(f"class folder {where} contains no readable images (looked for {extensions})")
            samples += [(rel, label) for rel in files]
        layout.splits[split] = samples
    return layout


def _header(tree: FileTree, rel: str) -> tuple[int, int] | str:
    """The (width, height) from the header of ``rel``, or why it cannot be read."""
    try:
        with Image.open(tree.open(rel)) as img:
            return img.size
    except DataError as exc:
        return str(exc)
    except IMAGE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"


def scan_headers(layout: Layout, *, strict: bool) -> dict[str, tuple[int, int]]:
    """Read every candidate's header; drop (warn) or refuse (strict) the unreadable ones.

    Returns:
        rel -> (width, height) of the readable images. ``layout.splits`` keeps only those.

    Raises:
        DataError: strict and an unreadable image, or a class left without readable images.
    """
    sizes: dict[str, tuple[int, int]] = {}
    for split, samples in layout.splits.items():
        kept: list[Sample] = []
        for rel, label in samples:
            got = _header(layout.tree, rel)
            if isinstance(got, str):
                if strict:
                    raise DataError(f"unreadable image {layout.tree.display(rel)}: {got}")
                log_skipped(layout.tree.display(rel), got)
                continue
            sizes[rel] = got
            kept.append((rel, label))
        _check_classes_kept(layout, split, samples, kept)
        layout.splits[split] = kept
    return sizes


def _check_classes_kept(layout: Layout, split: str, before: list[Sample], after: list[Sample]) -> None:
    had = {label for _, label in before}
    has = {label for _, label in after}
    for label in sorted(had - has):
        folder = layout.folders[split]
        name = layout.class_names[label]
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        where = layout.tree.display(f"{folder}/{name}" if folder else name)
        raise DataError(f"class folder {where} contains no readable images (looked for {extensions})")


class ImageFolderDataset(torch.utils.data.Dataset):
    """Decodes ``(relative path, label)`` samples of a tree with Pillow and applies a per-sample transform.

    Indexed with ``(index, epoch)`` keys (see :class:`reslab.data.loader.EpochSampler`): the transform's
    random generator is seeded from ``(seed, epoch, index)``. Returns ``(uint8 CHW tensor, label)``, or
    None for an image that fails to decode when ``strict`` is False (after a warning naming it).
    """

    def __init__(
        self,
        tree: FileTree,
        samples: Sequence[Sample],
        transform: Any,
        *,
        mode: str = "RGB",
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        self.tree = tree
        self.samples = list(samples)
        self.transform = transform
        self.mode = mode
        self.seed = seed
        self.strict = strict
        self._said: set[str] = set()  # images whose skip was logged

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int] | None:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rel, label = self.samples[index]
        try:
            img = open_image(self.tree.open(rel), self.mode, name=self.tree.display(rel))
        except DataError as exc:
            if self.strict:
                raise
            if rel not in self._said:  # once, not every epoch (per process: each worker has its own set)
                self._said.add(rel)
                log_skipped(self.tree.display(rel), str(exc))
            return None
        rng = np.random.default_rng([self.seed, epoch, index])
        return self.transform(img, rng), label


class _DecodeDataset(torch.utils.data.Dataset):
    """For the cache build: ``(index, uint8 CHW tensor or the reason it failed)``, never raising in a
    worker (a worker's exception would reach the user as a multi-line traceback)."""

    def __init__(self, tree: FileTree, rels: Sequence[str], transform: EvalTransform, mode: str) -> None:
        self.tree, self.rels, self.transform, self.mode = tree, list(rels), transform, mode

    def __len__(self) -> int:
        return len(self.rels)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | str]:
        rel = self.rels[index]
        try:
            img = open_image(self.tree.open(rel), self.mode, name=self.tree.display(rel))
        except DataError as exc:
            return index, str(exc)
        # numpy, not a tensor: a tensor crosses from a worker through one shared-memory file per image
        return index, self.transform(img).numpy()


def _as_list(batch: list) -> list:
    return batch


def _decode_all(
    tree: FileTree, rels: list[str], transform: EvalTransform, mode: str, channels: int, workers: int, strict: bool
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Decode ``rels`` into one uint8 array; returns (images, decoded rels in order, [rel, reason] skipped)."""
    size = transform.size
    out = np.empty((len(rels), channels, size, size), dtype=np.uint8)
    ok = np.zeros(len(rels), dtype=bool)
    skipped: list[list[str]] = []

    def put(index: int, value: np.ndarray | str) -> None:
        if isinstance(value, str):
            if strict:
                raise DataError(value)
            log_skipped(tree.display(rels[index]), value)
            skipped.append([rels[index], value])
        else:
            out[index] = value
            ok[index] = True

    if tree.random_access:
        loader = torch.utils.data.DataLoader(
            _DecodeDataset(tree, rels, transform, mode),
            batch_size=256,
            num_workers=workers,
            collate_fn=_as_list,
        )
        for batch in loader:
            for index, value in batch:
                put(index, value)
    else:  # a compressed tar: one pass front to back, in this process
        position = {rel: i for i, rel in enumerate(rels)}
        for rel, data in tree.iter_bytes(rels):
            try:
                value: np.ndarray | str = transform(open_image(io.BytesIO(data), mode, name=tree.display(rel))).numpy()
            except DataError as exc:
                value = str(exc)
            put(position[rel], value)
    kept = np.flatnonzero(ok)
    return out[kept], [rels[i] for i in kept], skipped


def _choose_size(
    layout: Layout, image_size: int | None, reason: str | None, *, strict: bool
) -> tuple[int, str, dict[str, tuple[int, int]] | None]:
    """The image size, why, and the headers read to decide it (None when no header was read)."""
    if image_size is not None:
        return image_size, reason or f"image_size={image_size} given", None
    sizes = scan_headers(layout, strict=strict)
    distinct = sorted(set(sizes.values()))
    if len(distinct) == 1:
        w, h = distinct[0]
        side = min(w, h)
        what = f"every image is {w}x{h}" + ("" if w == h else f" (the shorter side, {side})")
        return side, f"{what} and no image size or model was given", sizes
    examples = ", ".join(f"{w}x{h}" for w, h in (distinct[0], distinct[-1]))
    return DEFAULT_SIZE, f"the images differ in size ({examples}, ...) and no image size or model was given", sizes


def _upscaled_from(layout: Layout, size: int, sizes: dict[str, tuple[int, int]] | None, *, strict: bool) -> int | None:
    """The images' own side where they are all the same small square (at most ``SMALL_IMAGE_MAX``) and
    ``size`` is larger than the array cache takes: then they are cached at it and resized on the device."""
    if size <= SMALL_IMAGE_MAX:
        return None
    sizes = sizes if sizes is not None else scan_headers(layout, strict=strict)
    distinct = set(sizes.values())
    if len(distinct) != 1:
        return None
    w, h = next(iter(distinct))
    return w if w == h and w <= SMALL_IMAGE_MAX else None


def build_folder_bundle(
    root: Path,
    opts: LoaderOptions,
    folder: FolderOptions,
    *,
    image_size: int | None,
    workers: int,
    norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    image_size_reason: str | None = None,
) -> DataBundle:
    """Scan ``root`` (a directory or an archive) and build the folder :class:`DataBundle` (see the
    module docstring for layouts, sizes and the two loading paths)."""
    strict, cache, cache_dir = folder.strict, folder.cache, folder.cache_dir
    interpolation, crop = folder.interpolation or "bilinear", folder.crop or "center"
    channels = folder.channels or 3
    if channels not in (1, 3):
        raise ConfigError(f"folder images can be read with 1 (grey) or 3 (RGB) channels, not {channels}")
    cache = "auto" if cache is None else cache
    if cache not in (True, False, "auto"):
        raise ConfigError(f"cache must be true, false or auto, got {cache!r}")
    if not (root.is_dir() or is_archive(root)):
        raise DataError(
            f"image folder ROOT {root} does not exist (expected a directory or a .zip/.tar/.tar.gz holding "
            "ROOT/train/<class>/*.jpg and ROOT/val/<class>/..., or ROOT/<class>/*.jpg)"
        )
    tree = open_tree(root)
    layout = resolve_layout(tree)
    size, size_reason, sizes = _choose_size(layout, image_size, image_size_reason, strict=strict)
    notes = [f"image size {size}x{size}: {size_reason}"]
    mode = MODES[channels]
    resize = folder.resize if folder.resize is not None else folder_eval_resize(size)
    count = sum(len(s) for s in layout.splits.values())
    # small images (CIFAR's 32 px JPEGs) asked for at a large size (a pretrained network's 224): cached at their
    # own size, each batch resized on the device, as the array data sets are -- not decoded at 224 every epoch
    native = _upscaled_from(layout, size, sizes, strict=strict) if cache is not False else None
    if native is not None:
        notes.append(
            f"images {native}x{native} -> {size}x{size}: cached at their own size, each batch resized on the device "
            "(bilinear, the whole image as for CIFAR arrays; a crop fraction does not apply to upscaled images)"
        )
        resize = size
    decode_size = native or size
    array_bytes = count * channels * decode_size * decode_size
    if cache == "auto":
        use_cache = decode_size <= SMALL_IMAGE_MAX and array_bytes <= CACHE_MEMORY_BUDGET
    else:
        use_cache = bool(cache)
    if not tree.random_access and not use_cache:
        raise DataError(
            f"{root} is a compressed tar, which cannot be read one image at a time; pass --data-arg cache=true "
            "(decoded once, front to back, into the array cache) or repack it as .zip or uncompressed .tar"
        )
    if opts.crop_padding is not None and not use_cache:
        raise ConfigError(
            "crop_padding applies to array data sets; per-sample folder training uses random-resized crops "
            "(the array cache, --data-arg cache=true, uses padded crops)"
        )
    check_norm_channels(norm, channels, "folder")
    mean, std = norm or ((IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (GREY_MEAN, GREY_STD))
    eval_transform = EvalTransform(size, resize, interpolation, crop)
    if use_cache:
        decode = eval_transform if native is None else EvalTransform(native, native, interpolation, crop)
        arrays, path_note = _cached_arrays(
            layout, decode, mode, channels, workers=workers, strict=strict, cache_dir=cache_dir
        )
        notes.append(path_note)
    else:
        if sizes is None:
            scan_headers(layout, strict=strict)
        why = "cache=false" if cache is False else f"images of {size} px (> {SMALL_IMAGE_MAX}) keep per-sample "
        why = why if cache is False else why + "random-resized-crop augmentation"
        notes.append(f"loading: per-sample decoding in {workers or 'the main'} DataLoader process(es) ({why})")
    splits = _make_splits(layout, opts, str(root))

    name = "folder"
    info = make_info(
        name,
        layout.class_names,
        (channels, size, size),
        mean,
        std,
        resize=resize,
        interpolation=interpolation,
        crop_mode=crop,
    )
    if use_cache:
        factories, train_loader = _array_loaders(splits, arrays, opts, mean, std, decode_size, resize_to=size)
    else:
        factories, train_loader = _file_loaders(
            tree, splits, opts, mean, std, eval_transform, size, mode, workers, strict
        )
    bundle = DataBundle(
        train=train_loader,
        val=factories["val"](),
        test=factories["test"]() if "test" in factories else None,
        num_classes=len(layout.class_names),
        class_names=layout.class_names,
        input_size=(channels, size, size),
        mean=mean,
        std=std,
        name=name,
        info=info,
        eval_factories=factories,
    )
    bundle.notes.extend(notes)
    return bundle


def _cached_arrays(
    layout: Layout,
    transform: EvalTransform,
    mode: str,
    channels: int,
    *,
    workers: int,
    strict: bool,
    cache_dir: str | Path | None,
) -> tuple[dict[str, np.ndarray], str]:
    """rel -> row of the decoded array (a view per image), from the cache or decoded now; and the note."""
    tree = layout.tree
    rels = [rel for samples in layout.splits.values() for rel, _ in samples]
    listing = {rel: tree.files[rel] for rel in rels}
    options = {"size": transform.size, "resize": transform.resize, "mode": mode, "pillow": PIL.__version__}
    if (transform.interpolation, transform.crop) != ("bilinear", "center"):  # earlier caches keep their names
        options.update(interpolation=transform.interpolation, crop=transform.crop)
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    stem = cache_stem(tree.root, listing, options)
    start = time.perf_counter()
    entry = load_entry(directory, stem)
    if entry is not None:
        images, meta = entry
        files, skipped = list(meta["files"]), meta.get("skipped", [])
        if skipped and strict:
            raise DataError(skipped[0][1])
        for rel, reason in skipped:
            log_skipped(tree.display(rel), reason)
        note = (
            f"loading: array cache hit, {len(files)} images loaded in {time.perf_counter() - start:.1f} s "
            f"from {directory / stem}.npy"
        )
    else:
        images, files, skipped = _decode_all(tree, rels, transform, mode, channels, workers, strict)
        took = time.perf_counter() - start
        try:
            save_entry(directory, stem, images, {"files": files, "skipped": skipped, "options": options})
            where = f"saved to {directory / stem}.npy"
        except OSError as exc:
            logger.warning("could not save the array cache in %s (%s); kept in memory", directory, exc)
            where = f"not saved: {exc}"
        note = f"loading: array cache built, {len(files)} images decoded once in {took:.1f} s ({where})"
    rows = {rel: images[i] for i, rel in enumerate(files)}
    for split, samples in layout.splits.items():
        kept = [(rel, label) for rel, label in samples if rel in rows]
        _check_classes_kept(layout, split, samples, kept)
        layout.splits[split] = kept
    return rows, note


def _split_samples(samples: list[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    labels = np.array([label for _, label in samples], dtype=np.int64)
    keep, held = stratified_split(labels, fraction, SPLIT_SEED)
    return [samples[i] for i in keep], [samples[i] for i in held]


def _make_splits(layout: Layout, opts: LoaderOptions, root: str) -> dict[str, list[Sample]]:
    """train / val (/ test) sample lists from the layout and ``val_split`` (see the module docstring)."""
    train = layout.splits["train"]
    official = {k: v for k, v in layout.splits.items() if k != "train"}
    splits: dict[str, list[Sample]] = {}
    if opts.val_split > 0 or not official:
        fraction = opts.val_split if opts.val_split > 0 else DEFAULT_VAL_SPLIT
        train, splits["val"] = _split_samples(train, fraction)
        if not splits["val"]:
            raise DataError(
                f"the held-out validation split of {root} is empty: every class has fewer than 2 images, so "
                f"val_split={fraction:g} holds none out (add images, or add a val/ folder)"
            )
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
    return splits


def _array_loaders(
    splits: dict[str, list[Sample]],
    rows: dict[str, np.ndarray],
    opts: LoaderOptions,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    size: int,
    resize_to: int | None = None,
) -> tuple[dict[str, Any], BatchLoader]:
    arrays = {
        split: (
            np.stack([rows[rel] for rel, _ in samples]) if samples else np.zeros((0, 1, size, size), np.uint8),
            np.array([label for _, label in samples], dtype=np.int64),
        )
        for split, samples in splits.items()
    }
    return device_loaders(to_device(arrays, opts.device), opts, mean, std, flip=True, resize=resize_to)


def _file_loaders(
    tree: FileTree,
    splits: dict[str, list[Sample]],
    opts: LoaderOptions,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    eval_transform: EvalTransform,
    size: int,
    mode: str,
    workers: int,
    strict: bool,
) -> tuple[dict[str, Any], BatchLoader]:
    def eval_factory(split: str):
        def make() -> FolderLoader:
            dataset = ImageFolderDataset(tree, splits[split], eval_transform, mode=mode, seed=opts.seed, strict=strict)
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

    train_transform = (
        TrainTransform(size, flip=True if opts.flip is None else opts.flip, interpolation=eval_transform.interpolation)
        if opts.augment
        else eval_transform
    )
    train = FolderLoader(
        ImageFolderDataset(tree, splits["train"], train_transform, mode=mode, seed=opts.seed, strict=strict),
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
        min_last_batch=MIN_TRAIN_BATCH,
    )
    return {split: eval_factory(split) for split in splits}, train
