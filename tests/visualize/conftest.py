"""Shared fixtures for the visualisation tests: a tiny trained checkpoint and image files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.tiny_runs import train_tiny

DATA = dict(data="synthetic", image_size=8, data_args={"num_classes": 4, "num_samples": 64}, batch_size=32)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A one-epoch resnet20 (widths 4-8-8) on 8x8 synthetic images: 4 classes class_0..class_3."""
    return train_tiny(tmp_path_factory.mktemp("vis") / "run", **DATA)


@pytest.fixture
def png(tmp_path):
    """A random 8x8 RGB PNG written by the test."""
    path = tmp_path / "image.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype("uint8")).save(path)
    return path
