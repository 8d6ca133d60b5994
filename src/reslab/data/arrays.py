"""In-memory splits on the training device: the uint8 arrays as tensors, their loaders (an evaluation-loader
factory per split, the shuffled training loader with batched augmentation) and the bundle around them.

Used by :func:`reslab.data.build_data` for the array data sets (CIFAR, MNIST, digits, synthetic) and by image
folders that go through the array cache (:mod:`reslab.data.sources.folder`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .augment import AugmentSpec, crop_padding_for
from .bundle import DataBundle, LoaderOptions, make_info
from .loader import MIN_TRAIN_BATCH, DeviceLoader
from .sources.base import ArrayData, channel_stats, stratified_split

#: the seed of every held-out validation split: fixed, so runs with different ``seed`` are validated
#: on the same images
SPLIT_SEED = 0


def check_norm_channels(norm: tuple[tuple[float, ...], tuple[float, ...]] | None, channels: int, name: str) -> None:
    """Refuse mean / std of another channel count than the data's ``channels``."""
    if norm is not None and len(norm[0]) != channels:
        raise ConfigError(f"mean/std have {len(norm[0])} values, but {name} images have {channels} channel(s)")


def array_bundle(
    name: str,
    data: ArrayData,
    opts: LoaderOptions,
    *,
    norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    resize: int | None = None,
) -> DataBundle:
    """Split, move to ``opts.device`` and wrap an :class:`ArrayData` in :class:`DeviceLoader` s (normalised
    with ``norm = (mean, std)`` if given, else the training split's statistics; every batch resized on the
    device to ``resize`` x ``resize`` where given)."""
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
    factories, train = device_loaders(tensors, opts, mean, std, flip=data.flip, resize=resize)
    if resize is not None:
        h = w = int(resize)
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
    resize: int | None = None,
) -> tuple[dict[str, Any], DeviceLoader]:
    """The device-resident loaders of in-memory splits (array data sets, and image folders through the
    array cache): an evaluation-loader factory per split, and the shuffled training loader with batched
    augmentation (padded random crop -- 4 px for 32 px images --, ``flip`` unless ``opts.flip`` says
    otherwise, cutout), every batch resized to ``resize`` where given."""
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
                resize=resize,
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
        resize=resize,
        min_last_batch=MIN_TRAIN_BATCH,
    )
    return {split: eval_factory(split) for split in tensors}, train


def _writable(array: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable array (torch.from_numpy warns on read-only buffers)."""
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()
