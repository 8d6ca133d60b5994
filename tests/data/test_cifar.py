"""CIFAR-10/100 readers: fake batches in tmp_path, corrupt variants, and the real cifar10-mini."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from reslab.data import build_data
from reslab.data.sources.cifar import load_cifar
from reslab.errors import DataError

from .fakes import CIFAR10_NAMES, write_cifar10, write_cifar100, write_pickle


@pytest.mark.parametrize("point_at_batch_folder", [False, True])
def test_cifar10_fake_batches(tmp_path, point_at_batch_folder):
    raw = write_cifar10(tmp_path)
    data_dir = tmp_path / "cifar-10-batches-py" if point_at_batch_folder else tmp_path
    b = build_data("cifar10", data_dir, batch_size=7, augment=False)
    assert b.class_names == CIFAR10_NAMES and b.num_classes == 10 and b.input_size == (3, 32, 32)
    assert b.train.num_samples == 30 and b.val.num_samples == 8 and b.test is None
    images = b.train.images.cpu().numpy()
    # channel-planar, row-major: pixel (c, y, x) of image i is byte c*1024 + y*32 + x of its row
    for i, c, y, x in [(0, 0, 0, 0), (3, 1, 5, 17), (29, 2, 31, 30), (12, 2, 0, 31)]:
        assert images[i, c, y, x] == raw["train"][i, c * 1024 + y * 32 + x]
    assert b.train.labels.tolist() == raw["train_labels"].tolist()
    assert b.val.labels.tolist() == raw["test_labels"].tolist()


def test_cifar100_fine_and_coarse(tmp_path):
    raw = write_cifar100(tmp_path)
    fine = build_data("cifar100", tmp_path, augment=False)
    assert fine.num_classes == 100 and fine.class_names[7] == "fine7"
    assert fine.train.labels.tolist() == raw["train_fine"].tolist()
    coarse = build_data("cifar100", tmp_path, cifar100_labels="coarse")
    assert coarse.num_classes == 20 and coarse.class_names[3] == "coarse3"
    assert coarse.val.labels.tolist() == raw["test_coarse"].tolist()


def test_missing_folder_names_path_and_suggests_download(tmp_path):
    with pytest.raises(DataError) as err:
        build_data("cifar10", tmp_path / "nowhere")
    msg = str(err.value)
    assert "nowhere" in msg and "cifar-10-batches-py" in msg and "data_batch_1" in msg and "--download" in msg


def test_missing_batch_file_is_named(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        build_data("cifar10", tmp_path)


def _corrupt(folder, kind):
    path = folder / "data_batch_2"
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif kind == "garbage":
        path.write_bytes(b"this is not a pickle at all")
    elif kind == "wrong_keys":
        write_pickle(path, {b"images": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    elif kind == "wrong_size":
        write_pickle(path, {b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]})
    elif kind == "label_count":
        write_pickle(path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]})
    elif kind == "label_range":
        write_pickle(path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    elif kind == "not_a_dict":
        write_pickle(path, [1, 2, 3])


@pytest.mark.parametrize(
    "kind", ["truncated", "garbage", "wrong_keys", "wrong_size", "label_count", "label_range", "not_a_dict"]
)
def test_corrupt_batch_is_a_data_error_naming_the_file(tmp_path, kind):
    write_cifar10(tmp_path)
    _corrupt(tmp_path / "cifar-10-batches-py", kind)
    with pytest.raises(DataError) as err:
        build_data("cifar10", tmp_path)
    assert "data_batch_2" in str(err.value)


def test_corrupt_meta_is_named(tmp_path):
    write_cifar10(tmp_path)
    write_pickle(tmp_path / "cifar-10-batches-py" / "batches.meta", {b"names": []})
    with pytest.raises(DataError, match="batches.meta.*label_names"):
        build_data("cifar10", tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_with_foreign_globals_is_refused(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match="test_batch.*not allowed"):
        build_data("cifar10", tmp_path)


def test_real_cifar10_mini(cifar10_mini):
    data = load_cifar("cifar10", cifar10_mini)
    assert data.train_images.shape == (4065, 3, 32, 32) and data.test_images.shape == (1020, 3, 32, 32)
    meta_path = cifar10_mini / "cifar-10-batches-py" / "batches.meta"
    with open(meta_path, "rb") as f:
        meta = pickle.load(f, encoding="bytes")
    assert data.class_names == [n.decode() for n in meta[b"label_names"]] == CIFAR10_NAMES
    assert set(np.unique(data.train_labels)) == set(range(10))
    # pixels: a row-major reconstruction of the raw bytes of one image
    with open(cifar10_mini / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    row = raw[b"data"][5]
    rebuilt = np.array([[[row[c * 1024 + y * 32 + x] for x in range(32)] for y in range(32)] for c in range(3)])
    assert np.array_equal(data.test_images[5], rebuilt)
    x = data.train_images.astype(np.float64)
    mean = x.mean(axis=(0, 2, 3)) / 255
    assert np.all((mean > 0.4) & (mean < 0.55)), mean  # CIFAR-10 channel means are about 0.47
    # Natural images are smooth: neighbouring pixels of the right decoding differ far less than those
    # of a wrong (interleaved HWC) decoding.
    planar = np.abs(np.diff(x, axis=3)).mean()
    interleaved = np.abs(np.diff(data.train_images.reshape(-1, 32, 32, 3).astype(float), axis=2)).mean()
    assert planar < 0.7 * interleaved
    # Not transposed: skies make the top of CIFAR images brighter than the bottom; left/right are alike.
    top_bottom = x[:, :, :8].mean() - x[:, :, -8:].mean()
    left_right = abs(x[:, :, :, :8].mean() - x[:, :, :, -8:].mean())
    assert top_bottom > 5 and top_bottom > 5 * left_right


def test_real_cifar10_mini_bundle_with_validation(cifar10_mini):
    b = build_data("cifar10", cifar10_mini, val_split=0.1, batch_size=512)
    assert b.train.num_samples + b.val.num_samples == 4065 and b.test.num_samples == 1020
    assert abs(b.val.num_samples - 407) <= 10
    # stratified: every class is in the validation split in about its share
    counts = torch.bincount(b.val.labels, minlength=10)
    assert counts.min() >= 35
    x, y = next(iter(b.train))
    assert x.shape == (512, 3, 32, 32) and y.shape == (512,)
