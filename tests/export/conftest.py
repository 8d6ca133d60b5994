"""Shared fixtures for the export tests: a tiny trained checkpoint."""

from __future__ import annotations

import pytest

from tests.tiny_runs import train_tiny

DATA = dict(data="synthetic", image_size=8, data_args={"num_classes": 4, "num_samples": 64}, batch_size=32)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A one-epoch resnet20 (widths 4-8-8) on 8x8 synthetic images: 4 classes class_0..class_3."""
    return train_tiny(tmp_path_factory.mktemp("export") / "run", **DATA)
