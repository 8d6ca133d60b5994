"""MNIST / Fashion-MNIST IDX readers on generated files, and their corrupt variants."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from reslab.data import build_data
from reslab.errors import ConfigError, DataError

from .fakes import idx_bytes, write_mnist


@pytest.mark.parametrize(
    "subdir, gz",
    [("", True), ("mnist", True), ("mnist/raw", False), ("MNIST/raw", True)],
)
def test_mnist_files_found_in_lenient_places(tmp_path, subdir, gz):
    arrays = write_mnist(tmp_path / subdir, gz=gz)
    b = build_data("mnist", tmp_path, augment=False, batch_size=10)
    assert b.input_size == (1, 28, 28) and b.class_names == [str(i) for i in range(10)]
    assert b.train.num_samples == 24 and b.val.num_samples == 12
    assert np.array_equal(b.train.images[:, 0].cpu().numpy(), arrays["train-images-idx3-ubyte"])
    assert b.val.labels.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_augmentation_defaults_and_pad_to_32(tmp_path):
    write_mnist(tmp_path)
    b = build_data("mnist", tmp_path, pad_to_32=True)
    assert b.input_size == (1, 32, 32) and b.info["input_size"] == [1, 32, 32]
    assert b.train.images[:, :, :2].sum() == 0 and b.train.images[:, :, :, -2:].sum() == 0
    assert b.train.augment.crop_padding == 4 and not b.train.augment.flip  # no flip for digits


def test_fashion_mnist_names_and_flip(tmp_path):
    write_mnist(tmp_path / "fashion_mnist")
    b = build_data("fashion_mnist", tmp_path)
    assert b.class_names[0] == "T-shirt/top" and b.class_names[9] == "Ankle boot"
    assert b.train.augment.flip  # a mirrored garment is still the same garment


def test_missing_files_name_the_places_and_suggest_download(tmp_path):
    with pytest.raises(DataError) as err:
        build_data("mnist", tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path) in msg and "--download" in msg


def test_pad_to_32_is_mnist_only():
    with pytest.raises(ConfigError):
        build_data("digits", pad_to_32=True)


def _break(folder, kind):
    path = folder / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    if kind == "truncated_gzip":
        path.write_bytes(path.read_bytes()[:40])
    elif kind == "truncated_payload":
        path.write_bytes(gzip.compress(data[:-100]))
    elif kind == "bad_magic":
        path.write_bytes(gzip.compress(b"\x12\x34" + data[2:]))
    elif kind == "wrong_type":
        path.write_bytes(gzip.compress(data[:2] + b"\x0d" + data[3:]))
    elif kind == "wrong_ndim":
        path.write_bytes(gzip.compress(idx_bytes(np.zeros((24, 784), np.uint8))))
    elif kind == "count_mismatch":
        path.write_bytes(gzip.compress(idx_bytes(np.zeros((23, 28, 28), np.uint8))))


@pytest.mark.parametrize(
    "kind", ["truncated_gzip", "truncated_payload", "bad_magic", "wrong_type", "wrong_ndim", "count_mismatch"]
)
def test_corrupt_idx_is_a_data_error_naming_the_file(tmp_path, kind):
    write_mnist(tmp_path)
    _break(tmp_path, kind)
    with pytest.raises(DataError) as err:
        build_data("mnist", tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_label_out_of_range_is_named(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(12, 10, np.uint8))))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        build_data("mnist", tmp_path)
