"""The device-resident loader and the batched augmentation ops."""

from __future__ import annotations

import pytest
import torch

from reslab.data import DeviceLoader, build_data
from reslab.data.augment import AugmentSpec, crop_padding_for, cutout, random_crop, random_flip
from reslab.data.loader import MIN_TRAIN_BATCH, batch_bounds


def _epoch(loader):
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def _labelled_images(n=40, size=16, classes=4):
    """Images whose centre 6x6 block has value 10 + 50 * label, and a random background."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    c = size // 2
    images[:, :, c - 3 : c + 3, c - 3 : c + 3] = (10 + 50 * labels).to(torch.uint8)[:, None, None, None]
    return images, labels


def test_batches_shapes_dtypes_device_and_partial_last_batch():
    b = build_data("synthetic", num_samples=100, batch_size=32, channels_last=True)
    assert len(b.train) == 4 and b.train.num_samples == 100
    batches = list(b.train)
    assert [x.shape[0] for x, _ in batches] == [32, 32, 32, 4]  # drop_last=False
    x, y = batches[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.device == y.device == torch.device("cpu") == b.train.device
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert b.train.images.dtype == torch.uint8


def test_normalisation_gives_zero_mean_unit_std_on_training_data():
    b = build_data("synthetic", num_samples=256, channels=3, augment=False)
    x, _ = _epoch(b.loader("train"))
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    # and it is exactly (x / 255 - mean) / std of the stored uint8
    raw = b.train.images[:5].float() / 255
    expect = (raw - torch.tensor(b.mean).view(1, 3, 1, 1)) / torch.tensor(b.std).view(1, 3, 1, 1)
    assert torch.allclose(x[:5], expect, atol=1e-5)


def test_eval_loaders_are_in_order_and_unaugmented():
    b = build_data("synthetic", num_samples=64, val_split=0.25, batch_size=10, cutout=4)
    for split in ("train", "val", "test"):
        loader = b.loader(split)
        assert loader.augment is None and not loader.shuffle
        x1, y1 = _epoch(loader)
        x2, y2 = _epoch(loader)
        assert torch.equal(x1, x2) and torch.equal(y1, loader.labels)


def test_set_epoch_determinism_and_resume():
    make = lambda: build_data("synthetic", num_samples=96, batch_size=16, cutout=6, seed=5).train  # noqa: E731
    loader = make()
    loader.set_epoch(3)
    a = _epoch(loader)
    loader.set_epoch(3)
    b = _epoch(loader)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    loader.set_epoch(4)
    c = _epoch(loader)
    assert not torch.equal(a[1], c[1])  # another epoch, another order
    # an uninterrupted run (iterating advances the epoch) sees what a run resumed at epoch 2 sees
    run = make()
    epochs = [_epoch(run) for _ in range(3)]
    resumed = make()
    resumed.set_epoch(2)
    assert torch.equal(_epoch(resumed)[0], epochs[2][0])
    assert run.epoch == 3


def test_seed_changes_order_and_global_rng_is_untouched():
    a = build_data("synthetic", num_samples=64, batch_size=64, seed=0)
    b = build_data("synthetic", num_samples=64, batch_size=64, seed=0)
    b.train.seed = 1
    state = torch.get_rng_state()
    ya, yb = next(iter(a.train))[1], next(iter(b.train))[1]
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(ya, yb)


def test_augmentation_changes_images_but_keeps_labels_aligned():
    images, labels = _labelled_images()
    spec = AugmentSpec(crop_padding=2, flip=True, cutout=0)
    plain = DeviceLoader(images, labels, batch_size=40, mean=[0.5] * 3, std=[0.5] * 3)
    aug = DeviceLoader(images, labels, batch_size=40, mean=[0.5] * 3, std=[0.5] * 3, shuffle=True, augment=spec)
    x, y = next(iter(aug))
    raw = (x * 0.5 + 0.5) * 255  # back to pixel values
    # the labelled centre block survives a shift of <= 2 px: its centre 2x2 still encodes the label
    centre = raw[:, 0, 7:9, 7:9].round()
    assert torch.equal(centre, (10 + 50 * y).float()[:, None, None].expand(-1, 2, 2))
    # and the images did change: compare each with its unaugmented original
    originals, _ = next(iter(plain))
    order = torch.randperm(40, generator=__import__("reslab.data.loader").data.loader.epoch_generator(0, 0, 0))
    changed = (x != originals[order]).flatten(1).any(1)
    assert changed.float().mean() > 0.7  # 1/25 of crops are unshifted, and half of those unflipped


def test_random_crop_matches_per_sample_slicing():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (6, 2, 8, 10), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 7, (6, 2), generator=g)
    out = random_crop(images, offsets, 3)
    padded = torch.nn.functional.pad(images, (3, 3, 3, 3))
    for i in range(6):
        top, left = offsets[i].tolist()
        assert torch.equal(out[i], padded[i, :, top : top + 8, left : left + 10])
    assert torch.equal(random_crop(images, torch.full((6, 2), 3), 3), images)  # centred = identity


def test_random_flip_mirrors_selected_images():
    images = torch.arange(2 * 1 * 2 * 3).view(2, 1, 2, 3)
    out = random_flip(images, torch.tensor([True, False]))
    assert torch.equal(out[0], images[0].flip(-1)) and torch.equal(out[1], images[1])


def test_cutout_zeroes_a_square():
    x = torch.ones(3, 2, 12, 12)
    out = cutout(x, torch.tensor([[6, 6], [0, 0], [11, 5]]), 4)
    zero = out == 0
    assert torch.equal(zero[:, 0], zero[:, 1])  # all channels
    assert zero[0, 0].sum() == 16 and zero[0, 0, 4:8, 4:8].all()  # a full 4x4 square inside the image
    assert zero[1, 0].sum() == 4 and zero[1, 0, 0:2, 0:2].all()  # clipped at the corner
    assert zero[2, 0].sum() == 12 and zero[2, 0, 9:12, 3:7].all()  # clipped at the bottom
    assert torch.equal(x, torch.ones(3, 2, 12, 12))  # input untouched


def test_cutout_in_the_loader():
    b = build_data("synthetic", num_samples=64, batch_size=64, cutout=8, crop_padding=0, flip=False)
    x, _ = next(iter(b.train))
    zero = (x == 0).all(dim=1)  # pixels zero in every channel
    counts = zero.flatten(1).sum(1)
    assert (counts <= 64).all() and (counts > 0).all() and (counts == 64).float().mean() > 0.3
    for mask in zero:  # each zero region is a rectangle of <= 8x8
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        assert mask.sum() == len(rows) * len(cols) and len(rows) <= 8 and len(cols) <= 8


def test_crop_padding_rule():
    assert crop_padding_for(32) == 4 and crop_padding_for(28) == 4 and crop_padding_for(64) == 8
    assert crop_padding_for(8) == 0 and crop_padding_for(224) == 28


def test_augment_off_gives_the_same_pixels_as_eval():
    b = build_data("synthetic", num_samples=32, batch_size=32, augment=False)
    x, y = next(iter(b.train))
    ev_x, ev_y = next(iter(b.loader("train")))
    # same images, only the order differs
    order = torch.argsort(torch.tensor([hash(t.numpy().tobytes()) for t in x]))
    ev_order = torch.argsort(torch.tensor([hash(t.numpy().tobytes()) for t in ev_x]))
    assert torch.equal(x[order], ev_x[ev_order]) and torch.equal(y[order], ev_y[ev_order])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_stay_on_device_and_match_cpu():
    cpu = build_data("synthetic", num_samples=64, batch_size=32, cutout=4)
    gpu = build_data("synthetic", num_samples=64, batch_size=32, cutout=4, device="cuda")
    assert gpu.train.images.is_cuda
    for (xc, yc), (xg, yg) in zip(cpu.train, gpu.train, strict=True):
        assert xg.is_cuda and yg.is_cuda
        assert torch.equal(yc, yg.cpu()) and torch.allclose(xc, xg.cpu(), atol=1e-5)


def test_crop_with_flip_in_one_gather_matches_separate_ops():
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (8, 3, 6, 7), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 5, (8, 2), generator=g)
    flips = torch.rand(8, generator=g) < 0.5
    both = random_crop(images, offsets, 2, flips)
    assert torch.equal(both, random_flip(random_crop(images, offsets, 2), flips))
    assert torch.equal(random_crop(images, None, 0, flips), random_flip(images, flips))


def _sizes(loader):
    return [y.numel() for _, y in loader]


def test_a_last_training_batch_of_one_image_joins_the_batch_before():
    """BatchNorm cannot train on one image (a 1x1 last stage): a training loader merges such a last batch into
    the batch before; every image is still seen once, and a loader whose last batch is fine is unchanged."""
    images, labels = _labelled_images(n=66)
    kwargs = dict(batch_size=32, mean=[0.5] * 3, std=[0.25] * 3, shuffle=True, seed=4)
    plain = DeviceLoader(images[:65], labels[:65], **kwargs)
    merged = DeviceLoader(images[:65], labels[:65], **kwargs, min_last_batch=MIN_TRAIN_BATCH)
    assert _sizes(plain) == [32, 32, 1]
    assert _sizes(merged) == [32, 33] and len(merged) == 2 and merged.global_batch_rows(1) == 33
    x_plain, y_plain = _epoch(plain)
    x_merged, y_merged = _epoch(merged)
    assert torch.equal(y_plain, y_merged) and torch.equal(x_plain, x_merged)  # same order, same pixels
    assert "would hold 1 image (65 images, batch 32)" in merged.last_batch_note()
    fine = DeviceLoader(images, labels, **kwargs, min_last_batch=MIN_TRAIN_BATCH)
    assert _sizes(fine) == [32, 32, 2] and fine.last_batch_note() is None
    fine.set_epoch(0)
    for (xa, ya), (xb, yb) in zip(fine, DeviceLoader(images, labels, **kwargs), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)  # bit for bit
    # the data sets' training loaders do it; evaluation loaders keep every batch as it comes
    b = build_data("synthetic", num_samples=65, batch_size=32)
    assert _sizes(b.train) == [32, 33] and _sizes(b.loader("train")) == [32, 32, 1]


def test_batch_bounds():
    assert batch_bounds(257, 128, min_rows=2) == [(0, 128), (128, 257)]
    assert batch_bounds(258, 128, min_rows=2) == [(0, 128), (128, 256), (256, 258)]
    assert batch_bounds(1, 128, min_rows=2) == [(0, 1)]  # a single batch stays
    assert batch_bounds(131, 64, world_size=2, min_rows=2) == [(0, 64), (64, 131)]  # 3 left: a rank would get 1
    assert batch_bounds(132, 64, world_size=2, min_rows=2) == [(0, 64), (64, 128), (128, 132)]
    assert batch_bounds(129, 128) == [(0, 128), (128, 129)]  # min_rows 1 (evaluation): as it comes
