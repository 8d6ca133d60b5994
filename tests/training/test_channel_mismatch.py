"""Weights trained on 1-channel images used on RGB data (a real CIFAR-10 subset): one line naming the weights,
both channel counts and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from reslab.errors import CheckpointError
from reslab.training import evaluate
from tests.tiny_runs import train_tiny

from .conftest import CIFAR10_MINI

GREY = dict(data="synthetic", image_size=8, data_args={"num_classes": 10, "num_samples": 64, "channels": 1})


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory) -> Path:
    out = train_tiny(tmp_path_factory.mktemp("grey") / "run", batch_size=32, **GREY)
    return out


@pytest.mark.skipif(not CIFAR10_MINI.is_dir(), reason="needs the cifar10-mini data")
@pytest.mark.parametrize("as_weights", [False, True], ids=["checkpoint", "pretrained"])
def test_grey_weights_on_rgb_data_name_both_counts_and_the_fix(grey_run, tmp_path, as_weights):
    ckpt = str(grey_run / "best.pt")
    fix = f"reslab train --model resnet20 --pretrained {ckpt} --data cifar10"
    with pytest.raises(CheckpointError, match=r"takes 1-channel images, but cifar10 has 3-channel images") as e:
        if as_weights:
            evaluate(None, "cifar10", model="resnet20", pretrained=ckpt, data_dir=CIFAR10_MINI, out=tmp_path)
        else:
            evaluate(ckpt, "cifar10", data_dir=CIFAR10_MINI, out=tmp_path)
    assert str(e.value).startswith(ckpt) and fix in str(e.value) and "from 1 to 3 channels" in str(e.value)
