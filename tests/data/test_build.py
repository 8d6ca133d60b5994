"""build_data on the offline data sets (synthetic, digits): the contract the trainer codes against."""

from __future__ import annotations

import json

import pytest
import torch

from reslab.data import DataBundle, build_data, list_datasets
from reslab.errors import ConfigError


def _all(loader):
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def _nearest_centroid_accuracy(bundle: DataBundle) -> float:
    x, y = _all(bundle.loader("train"))
    centroids = torch.stack([x[y == c].flatten(1).mean(0) for c in range(bundle.num_classes)])
    vx, vy = _all(bundle.val)
    pred = torch.cdist(vx.flatten(1), centroids).argmin(1)
    return (pred == vy).float().mean().item()


def test_list_datasets():
    assert list_datasets() == [
        "cifar10",
        "cifar100",
        "digits",
        "fashion_mnist",
        "folder",
        "mnist",
        "synthetic",
    ]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        build_data("imagenet22k")
    assert "imagenet22k" in str(err.value) and "cifar10" in str(err.value) and "synthetic" in str(err.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=0),
        dict(val_split=1.0),
        dict(cutout=-1),
        dict(seed=-1),
        dict(split_for_eval="holdout"),
        dict(cifar100_labels="coarse"),
        dict(val_split="lots"),
        dict(device="nonsense"),
    ],
)
def test_bad_options_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        build_data("synthetic", **kwargs)


def test_option_for_another_data_set_is_rejected():
    with pytest.raises(ConfigError, match="num_classes.*synthetic"):
        build_data("digits", num_classes=3)


def test_synthetic_bundle_shapes_and_info():
    b = build_data("synthetic", batch_size=100, num_classes=4, num_samples=300, image_size=12, channels=2)
    assert b.name == "synthetic" and b.num_classes == 4 and len(b.class_names) == 4
    assert b.input_size == (2, 12, 12)
    assert b.train.num_samples == 300 and len(b.train) == 3
    assert b.val.num_samples == 75 and b.test is None
    assert b.loader("test") is b.val
    x, y = next(iter(b.train))
    assert x.shape == (100, 2, 12, 12) and x.dtype == torch.float32 and y.dtype == torch.int64
    # info is checkpoint-ready: plain JSON types that round-trip
    assert json.loads(json.dumps(b.info)) == b.info
    assert b.info["input_size"] == [2, 12, 12] and b.info["class_names"] == b.class_names


def test_synthetic_is_deterministic_given_seed():
    a = build_data("synthetic", seed=3, num_samples=64)
    b = build_data("synthetic", seed=3, num_samples=64)
    c = build_data("synthetic", seed=4, num_samples=64)
    assert torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.images, c.train.images)


def test_synthetic_has_learnable_structure():
    b = build_data("synthetic", num_samples=512, augment=False)
    assert _nearest_centroid_accuracy(b) > 0.8  # chance is 0.1


def test_digits_split_and_structure():
    b = build_data("digits", batch_size=256)
    assert b.input_size == (1, 8, 8) and b.class_names == [str(i) for i in range(10)]
    assert b.train.num_samples + b.val.num_samples == 1797
    assert abs(b.val.num_samples - 0.2 * 1797) < 10
    assert b.train.images.max().item() == 255 and b.train.images.min().item() == 0
    assert b.train.augment is None  # 8x8: no crop padding, and no flip for digits
    assert _nearest_centroid_accuracy(b) > 0.8


def test_digits_upsampled_with_validation_split():
    b = build_data("digits", image_size=32, val_split=0.1, batch_size=64)
    assert b.input_size == (1, 32, 32)
    assert b.train.augment is not None and b.train.augment.crop_padding == 4 and not b.train.augment.flip
    assert b.test is not None and b.test.num_samples == b.loader("test").num_samples
    assert b.train.num_samples + b.val.num_samples + b.test.num_samples == 1797
    # train and validation are disjoint parts of the official training split
    assert abs(b.val.num_samples - 0.1 * (1797 - b.test.num_samples)) < 10


def test_limit_and_split_for_eval():
    b = build_data("synthetic", num_samples=200, limit=50, split_for_eval="train", batch_size=16)
    assert b.train.num_samples == 50
    assert b.val.num_samples == 50 and b.val.augment is None and not b.val.shuffle


def test_image_size_resizes_array_data_sets_on_the_device(tmp_path):
    from .fakes import write_cifar10

    write_cifar10(tmp_path)
    native = build_data("cifar10", tmp_path, image_size=32, augment=False, batch_size=8)  # the native size: as is
    assert native.input_size == (3, 32, 32) and native.train.resize is None
    big = build_data("cifar10", tmp_path, image_size=64, augment=False, batch_size=8, image_size_reason="a reason")
    assert big.input_size == (3, 64, 64) and big.info["input_size"] == [3, 64, 64] and big.info["resize"] == 64
    assert "images 32x32 -> 64x64: a reason; resized on the device, bilinear" in big.notes
    # every batch of every split is resized on the device after normalising: the native batch, interpolated
    for split in ("train", "val"):
        (x_big, y_big), (x_small, y_small) = next(iter(big.loader(split))), next(iter(native.loader(split)))
        assert x_big.shape == (8, 3, 64, 64) and torch.equal(y_big, y_small)
        expected = torch.nn.functional.interpolate(x_small, size=(64, 64), mode="bilinear", align_corners=False)
        torch.testing.assert_close(x_big, expected)
    # shrinking is antialiased, as Pillow's resize is
    small = build_data("cifar10", tmp_path, image_size=16, augment=False, batch_size=8)
    x, _ = next(iter(small.loader("val")))
    x32, _ = next(iter(native.loader("val")))
    ref = torch.nn.functional.interpolate(x32, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(x, ref)


def test_batches_are_dense_in_the_requested_memory_format():
    for channels_last in (False, True):
        b = build_data("synthetic", num_samples=40, batch_size=16, cutout=4, channels_last=channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        for loader in (b.train, b.val):
            x, _ = next(iter(loader))
            assert x.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("name", ["folder", "cifar10", "mnist"])
def test_a_data_dir_that_is_a_file_says_so(tmp_path, name):
    from reslab.errors import DataError

    from .fakes import write_image

    image = tmp_path / "some.png"
    write_image(image, (255, 0, 0), (8, 8))
    takes = "a folder or archive" if name == "folder" else "a folder"
    with pytest.raises(DataError, match=rf"^data dir {image} is a file, not {takes}"):
        build_data(name, image, image_size=8 if name == "folder" else None, device="cpu")
