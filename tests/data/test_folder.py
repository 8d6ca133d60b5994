"""Image-folder data sets: layouts, decoding, determinism, and bad files."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from reslab.data import build_data
from reslab.errors import ConfigError, DataError

from .fakes import FOLDER_COLOURS, make_image_folder, write_image


def _epoch(loader):
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def _dominant_channel(x):
    return x.mean(dim=(2, 3)).argmax(dim=1)


def test_train_val_layout(tmp_path):
    make_image_folder(tmp_path, "train", per_class=4)
    make_image_folder(tmp_path, "val", per_class=2, suffixes=(".jpeg", ".bmp"))
    b = build_data("folder", tmp_path, image_size=12, batch_size=5)
    assert b.class_names == sorted(FOLDER_COLOURS) and b.num_classes == 3
    assert b.input_size == (3, 12, 12) and b.train.num_samples == 12 and b.val.num_samples == 6
    assert b.test is None and b.loader("test") is b.val
    assert b.info["resize"] == 12 and b.info["crop"] == [12, 12]  # small images: evaluated whole
    x, y = _epoch(b.train)
    assert x.shape == (12, 3, 12, 12) and x.dtype == torch.float32 and y.dtype == torch.int64
    # classes are colours (cat red, dog green, emu blue): the labels travel with their images
    assert torch.equal(_dominant_channel(x), y)
    vx, vy = _epoch(b.val)
    assert vy.tolist() == [0, 0, 1, 1, 2, 2] and torch.equal(_dominant_channel(vx), vy)


def test_single_tree_is_split_stratified_by_default(tmp_path):
    make_image_folder(tmp_path, None, per_class=10)
    b = build_data("folder", tmp_path, image_size=8, batch_size=8)
    assert b.train.num_samples == 27 and b.val.num_samples == 3  # 10 % of every class
    assert sorted(_epoch(b.val)[1].tolist()) == [0, 1, 2]
    b2 = build_data("folder", tmp_path, image_size=8, val_split=0.3, limit=5)
    assert b2.val.num_samples == 9 and b2.train.num_samples == 5


def test_val_split_turns_val_folder_into_test(tmp_path):
    make_image_folder(tmp_path, "train", per_class=5)
    make_image_folder(tmp_path, "val", per_class=2)
    b = build_data("folder", tmp_path, image_size=8, val_split=0.2)
    assert b.train.num_samples == 12 and b.val.num_samples == 3 and b.test.num_samples == 6


def test_epoch_determinism_and_worker_independence(tmp_path):
    make_image_folder(tmp_path, "train", per_class=4)
    make_image_folder(tmp_path, "val", per_class=1)
    b = build_data("folder", tmp_path, image_size=10, batch_size=4, cutout=3, seed=1, cache=False)
    b.train.set_epoch(2)
    a = _epoch(b.train)
    b.train.set_epoch(2)
    again = _epoch(b.train)
    assert torch.equal(a[0], again[0]) and torch.equal(a[1], again[1])
    other = _epoch(b.train)  # epoch 3
    assert not torch.equal(a[0], other[0])
    # two worker processes decode the same epoch to the same bytes
    w = build_data("folder", tmp_path, image_size=10, batch_size=4, cutout=3, seed=1, workers=2, cache=False)
    w.train.set_epoch(2)
    wa = _epoch(w.train)
    assert torch.equal(a[0], wa[0]) and torch.equal(a[1], wa[1])


def test_augmentation_off_and_grey(tmp_path):
    make_image_folder(tmp_path, "train", per_class=2)
    make_image_folder(tmp_path, "val", per_class=1)
    b = build_data("folder", tmp_path, image_size=8, augment=False, channels=1)
    assert b.input_size == (1, 8, 8) and b.mean == (0.449,)
    x, _ = _epoch(b.train)
    assert x.shape == (6, 1, 8, 8)


@contextlib.contextmanager
def _skips(caplog, name: str):
    """Expect one tidy log line naming the skipped file and why -- no Python ``UserWarning`` (whose
    display echoes a source line)."""
    caplog.clear()
    with warnings.catch_warnings(record=True) as raised, caplog.at_level("WARNING", logger="reslab"):
        warnings.simplefilter("always")
        yield
    assert not raised, [str(w.message) for w in raised]
    lines = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("skipped unreadable image ") and ": " in lines[0], lines
    assert "\n" not in lines[0]


def test_unreadable_image_is_skipped_with_a_warning(tmp_path, caplog):
    make_image_folder(tmp_path, "train", per_class=3)
    make_image_folder(tmp_path, "val", per_class=1)
    bad = tmp_path / "train" / "dog" / "broken.png"
    bad.write_bytes(b"not a png")
    with _skips(caplog, "broken.png"):
        b = build_data("folder", tmp_path, image_size=8)
    assert b.train.num_samples == 9
    with pytest.raises(DataError, match="broken.png"):
        build_data("folder", tmp_path, image_size=8, strict=True)


def test_truncated_image_fails_at_decode_time(tmp_path, caplog):
    make_image_folder(tmp_path, "train", per_class=3)
    make_image_folder(tmp_path, "val", per_class=1)
    path = tmp_path / "train" / "emu" / "big.jpg"
    write_image(path, (0, 0, 255), size=(64, 64), noise_seed=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # the header parses, the pixels are missing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = build_data("folder", tmp_path, image_size=8, batch_size=20, cache=False)
    with _skips(caplog, "big.jpg"):
        x, y = _epoch(b.train)
    assert x.shape[0] == 9 and y.shape[0] == 9  # skipped from its batch
    strict = build_data("folder", tmp_path, image_size=8, strict=True, cache=False)
    with pytest.raises(DataError, match="big.jpg"):
        _epoch(strict.train)
    # the array cache decodes every image when it is built: the skip (or the error) comes then
    with _skips(caplog, "big.jpg"):
        cached = build_data("folder", tmp_path, image_size=8, batch_size=20, cache=True)
    assert cached.train.num_samples == 9
    with pytest.raises(DataError, match="big.jpg"):
        build_data("folder", tmp_path, image_size=8, strict=True, cache=True)


def test_empty_class_folder_is_named(tmp_path):
    make_image_folder(tmp_path, "train", per_class=2)
    (tmp_path / "train" / "yak").mkdir()
    (tmp_path / "train" / "yak" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError) as err:
        build_data("folder", tmp_path)
    assert "yak" in str(err.value) and "no readable images" in str(err.value)


def test_missing_root_and_no_classes(tmp_path):
    with pytest.raises(DataError) as err:
        build_data("folder", tmp_path / "photos")
    assert "photos" in str(err.value) and "ROOT/train/<class>" in str(err.value)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no class sub-folders"):
        build_data("folder", tmp_path / "empty")


def test_val_without_train_is_named(tmp_path):
    make_image_folder(tmp_path, "val", per_class=1)
    with pytest.raises(DataError, match="no train/"):
        build_data("folder", tmp_path)


def test_unknown_class_in_val_is_named(tmp_path):
    make_image_folder(tmp_path, "train", per_class=2)
    make_image_folder(tmp_path, "val", per_class=1)
    write_image(tmp_path / "val" / "gnu" / "0.png", (9, 9, 9))
    with pytest.raises(DataError, match="gnu"):
        build_data("folder", tmp_path)


def test_folder_rejects_array_only_options(tmp_path):
    make_image_folder(tmp_path, None, per_class=2)
    with pytest.raises(ConfigError, match="crop_padding"):
        build_data("folder", tmp_path, crop_padding=4, cache=False)
    with pytest.raises(ConfigError, match="cache"):
        build_data("folder", tmp_path, cache="sometimes")
    with pytest.raises(ConfigError):
        build_data("folder", tmp_path, channels=2)


def test_small_images_asked_for_large_are_cached_small_and_resized_on_the_device(tmp_path):
    """CIFAR-sized images for a 224-px network: decoded once at their own size into the array cache, each batch
    resized on the device (as CIFAR arrays are), not decoded at the large size every epoch; the same pixels as
    decoding at that size."""
    make_image_folder(tmp_path, None, per_class=4, suffixes=(".png",), size=(16, 16))
    b = build_data("folder", tmp_path, image_size=96, batch_size=4, augment=False, val_split=0.25)
    assert type(b.train).__name__ == "DeviceLoader" and b.train.images.shape[-2:] == (16, 16)
    assert b.input_size == (3, 96, 96) and b.info["input_size"] == [3, 96, 96] and b.info["resize"] == 96
    assert any("images 16x16 -> 96x96: cached at their own size" in n for n in b.notes)
    x, _ = next(iter(b.loader("val")))
    assert x.shape[1:] == (3, 96, 96)
    per_sample = build_data(
        "folder", tmp_path, image_size=96, batch_size=4, augment=False, val_split=0.25, cache=False, resize=96
    )
    assert not any("cached at their own size" in n for n in per_sample.notes)  # cache=false: decoded at 96 px
    y, _ = next(iter(per_sample.loader("val")))
    assert (x - y).abs().mean() < 0.05  # bilinear on the device vs Pillow's bilinear: the same picture


def test_a_last_training_batch_of_one_image_joins_the_batch_before(tmp_path):
    """Decoded folders batch as the array loader does: a last training batch of one image (BatchNorm cannot
    train on it) joins the batch before; evaluation batches stay as they come."""
    make_image_folder(tmp_path, "train", per_class=3)  # 9 images
    make_image_folder(tmp_path, "val", per_class=1)
    b = build_data("folder", tmp_path, image_size=8, batch_size=4, cache=False)
    assert len(b.train) == 2 and [y.numel() for _, y in b.train] == [4, 5]
    x, y = _epoch(b.train)
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2] and torch.equal(_dominant_channel(x), y)
    assert [y.numel() for _, y in b.loader("train")] == [4, 4, 1]


def test_train_on_a_folder_with_an_unreadable_image_says_so_in_one_line(tmp_path, capsys):
    """`reslab train --data folder`: the skipped file is one line on stderr (file and reason), no UserWarning."""
    from reslab.cli import main

    make_image_folder(tmp_path / "data", "train", per_class=3)
    make_image_folder(tmp_path / "data", "val", per_class=1)
    (tmp_path / "data" / "train" / "dog" / "broken.png").write_bytes(b"not a png")
    argv = ["train", "--model", "resnet20", "--model-arg", "widths=[4,8,8]", "--data", "folder", "--data-dir"]
    argv += [str(tmp_path / "data"), "--image-size", "8", "--epochs", "1", "--device", "cpu", "-q"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err.splitlines()
    mentions = [line for line in err if "broken.png" in line]
    assert len(mentions) == 1 and mentions[0].startswith("skipped unreadable image "), err
    assert not any("UserWarning" in line or "warnings.warn" in line for line in err), err
