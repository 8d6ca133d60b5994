"""Loaders: iterate ``(images, labels)`` batches already normalised and on the data's device.

:class:`DeviceLoader` serves an array data set held whole on the device as uint8 (CIFAR, MNIST, digits,
synthetic): each batch is an index gather plus batched augmentation, with no host round trip.
:class:`FolderLoader` wraps a ``torch.utils.data.DataLoader`` over decoded image files and gives the
same interface.

Both share the epoch contract: the order and augmentation of epoch ``e`` depend only on
``(seed, e)`` (a ``torch.Generator`` seeded from both, never the global RNG). Iterating uses the epoch
set by :meth:`set_epoch`, and each iteration advances it by one, so a trainer may either call
``set_epoch(e)`` before every epoch (exact resume) or just iterate repeatedly (epochs 0, 1, 2, ...).
The last batch may be smaller than ``batch_size`` (``drop_last=False``): every sample is seen once
per epoch. A training loader (``min_last_batch=MIN_TRAIN_BATCH``) merges a last batch too small for
BatchNorm into the batch before it (see :func:`batch_bounds`); every other batch stays as it was.

Sharding (torchrun): after :meth:`shard` ``(rank, world_size)`` the loader yields this rank's part of
each *global* batch of ``batch_size x world_size`` samples, in the same global order as one process
with the global batch: rank r takes rows ``r*B .. (r+1)*B - 1`` of every full global batch, and an
equal share (sizes differing by at most one) of the last, partial one. ``len()`` is then the number
of global batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.utils.data

from .augment import AugmentParams, AugmentSpec, apply_augment, cutout, normalize, sample_augment_params

Batch = tuple[torch.Tensor, torch.Tensor]

#: stream ids so that the order and the augmentation draws of one epoch are independent
_STREAM_ORDER, _STREAM_AUGMENT = 0, 1

#: the fewest images a rank's training batch may hold: BatchNorm in training mode needs more than one value
#: per channel, and a network's last stage is often 1x1 (resnet18 at 32 px), so a batch of one image fails
MIN_TRAIN_BATCH = 2


@runtime_checkable
class BatchLoader(Protocol):
    """What the trainer relies on: both loader classes satisfy it."""

    batch_size: int
    num_samples: int

    def __iter__(self) -> Iterator[Batch]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


def shard_rows(size: int, batch_size: int, world_size: int, rank: int) -> tuple[int, int]:
    """The rows ``[lo, hi)`` of a global batch of ``size`` samples that ``rank`` takes: ``rank*B ..
    (rank+1)*B`` of a full one (``size == batch_size * world_size``), an even share of a partial one."""
    if size == batch_size * world_size:
        return rank * batch_size, (rank + 1) * batch_size
    q, rem = divmod(size, world_size)
    lo = rank * q + min(rank, rem)
    return lo, lo + q + (1 if rank < rem else 0)


def batch_bounds(
    num_samples: int, global_batch: int, *, world_size: int = 1, min_rows: int = 1
) -> list[tuple[int, int]]:
    """The ``[start, stop)`` positions of an epoch's (global) batches of ``global_batch`` samples.

    A last batch that would give some rank fewer than ``min_rows`` samples (fewer than
    ``min_rows x world_size`` in all) is merged into the batch before it rather than dropped: every sample
    is still seen once per epoch, the batches before it are unchanged (so are the results of runs whose last
    batch is big enough), and the merged batch is at most ``min_rows x world_size - 1`` samples larger. A
    split of a single batch stays as it is, and so does every batch where ``min_rows`` is 1 (evaluation).
    """
    bounds = [(start, min(start + global_batch, num_samples)) for start in range(0, num_samples, global_batch)]
    if min_rows > 1 and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_rows * world_size:
        bounds[-2:] = [(bounds[-2][0], num_samples)]
    return bounds


def rank_bounds(bounds: list[tuple[int, int]], batch_size: int, world_size: int, rank: int) -> list[tuple[int, int]]:
    """``rank``'s ``[start, stop)`` part of each global batch of ``bounds`` (:func:`shard_rows`; in a single
    process, the batches themselves). A part may be empty: an evaluation split's last batch smaller than the
    world size."""
    if world_size == 1:
        return list(bounds)
    parts = []
    for start, stop in bounds:
        lo, hi = shard_rows(stop - start, batch_size, world_size, rank)
        parts.append((start + lo, start + hi))
    return parts


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``(seed, epoch, stream)`` through numpy's SeedSequence, so
    nearby seeds and epochs give unrelated streams. Draws are made on the CPU and then moved to the
    device, which makes them identical on CPU and CUDA."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


class _EpochLoader:
    """Shared epoch bookkeeping."""

    batch_size: int
    num_samples: int
    seed: int
    shuffle: bool
    _next_epoch: int
    rank: int = 0
    world_size: int = 1
    min_last_batch: int = 1

    def shard(self, rank: int, world_size: int) -> None:
        """From now on yield ``rank``'s share of each global batch of ``batch_size x world_size``."""
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not within world size {world_size}")
        self.rank, self.world_size = int(rank), int(world_size)

    @property
    def global_batch_size(self) -> int:
        """Samples per global batch: ``batch_size x world_size``."""
        return self.batch_size * self.world_size

    def batch_bounds(self) -> list[tuple[int, int]]:
        """The ``[start, stop)`` positions of each global batch of an epoch (see :func:`batch_bounds`)."""
        return batch_bounds(
            self.num_samples, self.global_batch_size, world_size=self.world_size, min_rows=self.min_last_batch
        )

    def global_batch_rows(self, index: int) -> int:
        """The size of global batch ``index`` of an epoch (the last may be partial, or merged)."""
        bounds = self.batch_bounds()
        if not 0 <= index < len(bounds):
            return 0
        start, stop = bounds[index]
        return stop - start

    def last_batch_note(self) -> str | None:
        """The line for the run's log when the last batch was merged into the one before (else None)."""
        remainder = self.num_samples % self.global_batch_size
        bounds = self.batch_bounds()
        if not remainder or len(bounds) == math.ceil(self.num_samples / self.global_batch_size):
            return None
        ranks = f" for {self.world_size} ranks" if self.world_size > 1 else ""
        each = " on each rank" if self.world_size > 1 else ""
        return (
            f"the last training batch would hold {remainder} image{'s' if remainder != 1 else ''}{ranks} "
            f"({self.num_samples} images, batch {self.global_batch_size}): BatchNorm needs at least "
            f"{self.min_last_batch}{each} in training, so it joins the batch before "
            f"({len(bounds)} batch{'es' if len(bounds) != 1 else ''} per epoch, the last of "
            f"{self.global_batch_rows(len(bounds) - 1)})"
        )

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (order and augmentation depend only on seed and epoch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._next_epoch = int(epoch)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will use."""
        return self._next_epoch

    def __len__(self) -> int:
        """Number of (global) batches per epoch (the last one may be partial)."""
        return len(self.batch_bounds())

    def _start_epoch(self) -> int:
        epoch = self._next_epoch
        self._next_epoch = epoch + 1
        return epoch


class DeviceLoader(_EpochLoader):
    """Batches of a uint8 NCHW data set that lives on one device.

    Args:
        images: (N, C, H, W) uint8 tensor, on the device the batches should be on.
        labels: (N,) int64 tensor on the same device.
        batch_size: samples per batch; the last batch of an epoch may be smaller.
        mean, std: per-channel statistics (in [0, 1] units) used to normalise.
        shuffle: a new permutation every epoch (training); otherwise in order.
        augment: the training augmentation, or None for an evaluation loader.
        seed: with the epoch, determines order and augmentation.
        channels_last: return batches in ``torch.channels_last`` memory format.
        resize: deliver ``resize`` x ``resize`` images: each batch is resized on the device after the
            augmentation (bilinear, antialiased when shrinking; it commutes with the normalisation), so the
            data stays small (CIFAR's 32 px) for a network that takes more (224).
        min_last_batch: a last batch smaller than this (per rank) joins the batch before
            (:data:`MIN_TRAIN_BATCH` for training; 1: every batch as it comes).

    Yields:
        ``(images, labels)``: float32 (B, C, H, W) normalised and int64 (B,), on the data's device.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool = False,
        augment: AugmentSpec | None = None,
        seed: int = 0,
        channels_last: bool = False,
        resize: int | None = None,
        min_last_batch: int = 1,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = images
        self.labels = labels.to(device=images.device, dtype=torch.int64)
        self.batch_size = int(batch_size)
        self.num_samples = int(images.shape[0])
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.active else None
        self.seed = int(seed)
        self.channels_last = channels_last
        self.resize = None if resize is None or tuple(images.shape[-2:]) == (resize, resize) else int(resize)
        self.min_last_batch = int(min_last_batch)
        self.mean = torch.tensor(list(mean), dtype=torch.float32, device=images.device)
        self.std = torch.tensor(list(std), dtype=torch.float32, device=images.device)
        self._next_epoch = 0

    @property
    def device(self) -> torch.device:
        """The device the data and the batches live on."""
        return self.images.device

    def __iter__(self) -> Iterator[Batch]:
        epoch = self._start_epoch()
        device = self.device
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        order = None
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=epoch_generator(self.seed, epoch, _STREAM_ORDER))
            order = order.to(device)
        params: AugmentParams | None = None
        if self.augment is not None:
            _, _, h, w = self.images.shape
            gen = epoch_generator(self.seed, epoch, _STREAM_AUGMENT)
            # One draw per epoch position, moved to the device once (no per-batch host sync).
            params = sample_augment_params(self.augment, self.num_samples, h, w, gen).to(device)
        for start, stop in rank_bounds(self.batch_bounds(), self.batch_size, self.world_size, self.rank):
            if start == stop:  # an evaluation split's last batch smaller than the world size
                continue
            if order is None:
                x, y = self.images[start:stop], self.labels[start:stop]
            else:
                idx = order[start:stop]
                x, y = self.images[idx], self.labels[idx]
            if params is not None and self.augment is not None:
                out = apply_augment(x, params[start:stop], self.augment, self.mean, self.std, fmt)
            else:
                out = normalize(x, self.mean, self.std, fmt)
            if self.resize is not None:
                out = resize_batch(out, self.resize)
            yield out.contiguous(memory_format=fmt), y


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """A float NCHW batch resized to ``size`` x ``size`` (bilinear; antialiased when shrinking, as Pillow and
    torchvision's ``Resize`` are)."""
    shrinking = size < max(images.shape[-2:])
    return torch.nn.functional.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
    )


class EpochSampler(torch.utils.data.Sampler):
    """Yields ``(index, epoch)`` keys so a Dataset can seed each sample's augmentation from
    ``(seed, epoch, index)``: the result does not depend on the worker count or the worker that
    decodes it."""

    def __init__(self, num_samples: int, *, shuffle: bool, seed: int) -> None:
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.batch_size, self.rank, self.world_size = 1, 0, 1  # set by FolderLoader.shard
        self.min_rows = 1  # FolderLoader's min_last_batch

    def _rank_bounds(self) -> list[tuple[int, int]]:
        """This rank's ``[start, stop)`` positions of each batch of an epoch (:func:`batch_bounds`)."""
        bounds = batch_bounds(
            self.num_samples, self.batch_size * self.world_size, world_size=self.world_size, min_rows=self.min_rows
        )
        return rank_bounds(bounds, self.batch_size, self.world_size, self.rank)

    def batch_sizes(self) -> list[int]:
        """The size of each of this rank's batches in an epoch (see :func:`batch_bounds`)."""
        return [stop - start for start, stop in self._rank_bounds()]

    def _positions(self) -> list[int] | range:
        """The positions in the epoch's order this rank takes (everything in a single process)."""
        if self.world_size == 1:
            return range(self.num_samples)
        return [p for start, stop in self._rank_bounds() for p in range(start, stop)]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = torch.randperm(
                self.num_samples, generator=epoch_generator(self.seed, self.epoch, _STREAM_ORDER)
            ).tolist()
        else:
            order = range(self.num_samples)
        epoch = self.epoch
        if self.world_size > 1:
            order = [order[p] for p in self._positions()]
        return ((int(i), epoch) for i in order)

    def __len__(self) -> int:
        return len(self._positions())


class EpochBatchSampler(torch.utils.data.Sampler):
    """Groups an :class:`EpochSampler`'s keys into this rank's batches (:meth:`EpochSampler.batch_sizes`:
    ``batch_size`` each, the last partial or merged), a ``DataLoader``'s ``batch_sampler``."""

    def __init__(self, sampler: EpochSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        keys = iter(self.sampler)
        for size in self.sampler.batch_sizes():
            batch = [next(keys) for _ in range(size)]
            if batch:
                yield batch

    def __len__(self) -> int:
        return sum(1 for size in self.sampler.batch_sizes() if size)


def collate_skipping_none(samples: list[tuple[torch.Tensor, int] | None]) -> Batch | None:
    """Stack ``(uint8 CHW, label)`` samples, dropping the None of images skipped as unreadable."""
    kept = [s for s in samples if s is not None]
    if not kept:
        return None
    return torch.stack([s[0] for s in kept]), torch.tensor([s[1] for s in kept], dtype=torch.int64)


class FolderLoader(_EpochLoader):
    """Batches of image files decoded by a ``torch.utils.data.DataLoader``, normalised on ``device``.

    Args:
        dataset: a map-style dataset taking ``(index, epoch)`` keys and returning ``(uint8 CHW, label)``
            or None for an image to skip (see :class:`reslab.data.sources.folder.ImageFolderDataset`).
        batch_size: samples per batch (the last may be smaller; skipped images make a batch smaller).
        mean, std: per-channel normalisation in [0, 1] units.
        device: where batches are delivered (host memory is pinned for CUDA).
        shuffle: new order every epoch from ``(seed, epoch)``.
        seed: with the epoch, fixes order, per-sample augmentation and cutout.
        workers: DataLoader worker processes (0: decode in this process).
        cutout: side of the cutout square applied on the device after normalisation (0: off).
        channels_last: deliver batches in ``torch.channels_last`` memory format.
        persistent_workers: keep worker processes between epochs (used for the training loader).
        min_last_batch: a last batch smaller than this (per rank) joins the batch before
            (:data:`MIN_TRAIN_BATCH` for training).
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        seed: int = 0,
        workers: int = 0,
        cutout: int = 0,
        channels_last: bool = False,
        persistent_workers: bool = False,
        min_last_batch: int = 1,
    ) -> None:
        self.dataset = dataset
        self.min_last_batch = int(min_last_batch)
        self.batch_size = int(batch_size)
        self.num_samples = len(dataset)  # type: ignore[arg-type]
        self.shuffle = shuffle
        self.seed = int(seed)
        self.workers = int(workers)
        self.cutout = int(cutout)
        self.channels_last = channels_last
        self.device = torch.device(device)
        self.mean = torch.tensor(list(mean), dtype=torch.float32, device=self.device)
        self.std = torch.tensor(list(std), dtype=torch.float32, device=self.device)
        self._sampler = EpochSampler(self.num_samples, shuffle=shuffle, seed=self.seed)
        self._sampler.batch_size, self._sampler.min_rows = self.batch_size, self.min_last_batch
        self._loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=EpochBatchSampler(self._sampler),
            num_workers=self.workers,
            collate_fn=collate_skipping_none,
            pin_memory=self.device.type == "cuda",
            # Safe to keep workers alive: the epoch reaches them through the sampler's keys.
            persistent_workers=persistent_workers and self.workers > 0,
        )
        self._next_epoch = 0

    def shard(self, rank: int, world_size: int) -> None:
        """As :meth:`_EpochLoader.shard`: the sampler yields this rank's share of each global batch (in
        per-rank batches, DistributedSampler's role); each image's augmentation stays keyed by its index."""
        super().shard(rank, world_size)
        self._sampler.batch_size, self._sampler.rank, self._sampler.world_size = self.batch_size, rank, world_size

    def __iter__(self) -> Iterator[Batch]:
        epoch = self._start_epoch()
        self._sampler.epoch = epoch
        gen = epoch_generator(self.seed, epoch, _STREAM_AUGMENT) if self.cutout > 0 else None
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        non_blocking = self.device.type == "cuda"
        for batch in self._loader:
            if batch is None:  # every image of this batch was unreadable (warned about already)
                continue
            x, y = batch
            x = x.to(self.device, non_blocking=non_blocking)
            y = y.to(self.device, non_blocking=non_blocking)
            out = normalize(x, self.mean, self.std, fmt)
            if gen is not None:
                spec = AugmentSpec(cutout=self.cutout)
                params = sample_augment_params(spec, out.shape[0], out.shape[2], out.shape[3], gen)
                out = cutout(out, params.centres.to(self.device), self.cutout)  # type: ignore[union-attr]
            yield out.contiguous(memory_format=fmt), y
