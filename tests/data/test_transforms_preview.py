"""Per-image transforms, preprocess_image (what `reslab predict` uses) and the preview grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from reslab.data import build_data, preprocess_image, save_batch_grid
from reslab.data.preview import save_preview
from reslab.data.transforms import EvalTransform, TrainTransform, eval_resize_for, random_resized_crop
from reslab.errors import ConfigError, DataError

from .fakes import make_image_folder, write_image


def test_eval_resize_rule():
    assert eval_resize_for(224) == 256 and eval_resize_for(32) == 37


def test_random_resized_crop_size_and_determinism():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    a = random_resized_crop(img, 16, np.random.default_rng(7))
    b = random_resized_crop(img, 16, np.random.default_rng(7))
    c = random_resized_crop(img, 16, np.random.default_rng(8))
    assert a.size == (16, 16) and np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    out = TrainTransform(16)(img, np.random.default_rng(1))
    assert out.shape == (3, 16, 16) and out.dtype == torch.uint8


def test_eval_transform_centre_crop():
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, 10:30] = 255  # the central 20x20 square is white
    out = EvalTransform(10, resize=10)(Image.fromarray(arr))
    # the white centre fills the crop (bilinear downsampling softens only the outer columns)
    assert out.shape == (3, 10, 10) and out[:, :, 1:-1].min() == 255 and out.min() > 200


def test_preprocess_matches_the_folder_eval_loader(tmp_path):
    make_image_folder(tmp_path, "train", per_class=2)
    make_image_folder(tmp_path, "val", per_class=1)
    b = build_data("folder", tmp_path, image_size=12)
    info = json.loads(json.dumps(b.info))  # as read back from a checkpoint
    vx, _ = next(iter(b.val))
    x = preprocess_image(tmp_path / "val" / "cat" / "0.png", info)
    assert x.shape == (1, 3, 12, 12) and x.dtype == torch.float32
    assert torch.allclose(x[0], vx[0], atol=1e-5)
    assert torch.allclose(preprocess_image(Image.open(tmp_path / "val" / "cat" / "0.png"), info), x)


def test_preprocess_for_array_data_sets_converts_and_normalises(tmp_path):
    info = build_data("digits", image_size=16).info
    path = tmp_path / "photo.jpg"
    write_image(path, (255, 255, 255), size=(40, 30))
    x = preprocess_image(path, info)
    assert x.shape == (1, 1, 16, 16)
    expect = (1.0 - info["mean"][0]) / info["std"][0]
    assert torch.allclose(x, torch.full_like(x, expect), atol=0.02)


def test_preprocess_errors_name_the_file(tmp_path):
    info = build_data("synthetic", num_samples=20).info
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match="bad.png"):
        preprocess_image(bad, info)
    with pytest.raises(DataError, match="absent.jpg"):
        preprocess_image(tmp_path / "absent.jpg", info)
    with pytest.raises(ConfigError):
        preprocess_image(bad, {"name": "x"})


def test_save_batch_grid_uint8_and_normalised(tmp_path):
    images = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    images[:, 0] = 255
    out = save_batch_grid(images, torch.arange(10) % 3, ["a", "b", "c"], tmp_path / "sub" / "grid.png", nrow=4)
    img = Image.open(out)
    assert img.format == "PNG" and img.size[0] > img.size[1] > 0
    # a red pixel inside the first (enlarged) tile
    assert img.getpixel((10, 10)) == (255, 0, 0)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    normalised = (images.float() / 255 - 0.5) / 0.25
    out2 = save_batch_grid(normalised, None, None, tmp_path / "grid2.png", mean=mean, std=std)
    assert Image.open(out2).getpixel((10, 10)) == (255, 0, 0)


def test_save_preview_draws_an_augmented_batch_and_keeps_the_epoch(tmp_path):
    b = build_data("synthetic", num_samples=100, batch_size=16, cutout=8)
    out = save_preview(b, tmp_path / "preview.png", n=20)
    assert Image.open(out).size[0] > 0
    assert b.train.epoch == 0  # the preview did not consume a training epoch
    save_preview(b, tmp_path / "val.png", n=5, split="val")
