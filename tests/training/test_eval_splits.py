"""A split a data set does not have is refused, never scored under another split's name (audit: eval --split)."""

from __future__ import annotations

import pytest

from reslab.data import build_data
from reslab.errors import ConfigError
from reslab.training import evaluate, train
from tests.tiny_runs import tiny_options

from ..data.fakes import make_image_folder

TINY = tiny_options()


def test_a_folder_of_train_and_val_has_no_test_split(tmp_path):
    make_image_folder(tmp_path / "d", "train", per_class=3)
    make_image_folder(tmp_path / "d", "val", per_class=2)
    bundle = build_data("folder", tmp_path / "d", image_size=8, batch_size=4, device="cpu")
    assert bundle.splits() == ("train", "val")
    with pytest.raises(ConfigError, match=r"has no test split .*its splits are train, val: use --split val"):
        bundle.split_loader("test")
    assert bundle.split_loader("val").num_samples == 6


def test_a_folder_of_train_alone_has_no_test_split(tmp_path):
    make_image_folder(tmp_path / "d", None, per_class=4)
    bundle = build_data("folder", tmp_path / "d", image_size=8, batch_size=4, device="cpu")
    assert bundle.splits() == ("train", "val")  # val: held out of the images
    with pytest.raises(ConfigError, match="no test split"):
        bundle.split_loader("test")


def test_without_a_validation_split_val_is_refused():
    bundle = build_data("synthetic", num_samples=32, num_classes=4, image_size=8, batch_size=16, device="cpu")
    assert bundle.val_is_test and bundle.splits() == ("train", "test")
    with pytest.raises(ConfigError, match=r"no val split .*without a validation split.*use --split test"):
        bundle.split_loader("val")
    held = build_data(
        "synthetic", num_samples=32, num_classes=4, image_size=8, batch_size=16, device="cpu", val_split=0.25
    )
    assert held.splits() == ("train", "val", "test")
    assert held.split_loader("val").num_samples == 8


def test_evaluate_refuses_a_split_the_run_has_not(tmp_path):
    make_image_folder(tmp_path / "d", "train", per_class=3)
    make_image_folder(tmp_path / "d", "val", per_class=2)
    train(data="folder", data_dir=str(tmp_path / "d"), image_size=8, batch_size=4, out=str(tmp_path / "run"), **TINY)
    with pytest.raises(ConfigError, match=r"folder data set at .*d has no test split"):
        evaluate(tmp_path / "run" / "best.pt", split="test", out=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()
    result = evaluate(tmp_path / "run" / "best.pt", out=tmp_path / "eval")  # default: the split it has
    assert result.split == "val" and result.n == 6
    assert (tmp_path / "eval" / "eval_val_confusion.csv").is_file()
