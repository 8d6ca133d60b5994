"""Shared set-up of the reproduce tests: tiny synthetic grids (no shared data needed) and cifar10-mini."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CIFAR10_MINI = REPO.parent / "shared" / "data" / "cifar10-mini"

#: a synthetic data set of 64 8x8 images in 4 classes and narrow 4-8-8 networks: a run takes well under a second
SYNTHETIC = {
    "data": "synthetic",
    "data_args": {"num_samples": 64, "num_classes": 4},
    "image_size": 8,
    "batch_size": 32,
    "model_args": {"widths": [4, 8, 8]},
    "device": "cpu",
}

needs_mini = pytest.mark.skipif(
    not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(),
    reason=f"the CIFAR-10 subset is not at {CIFAR10_MINI} (a checkout without ../shared/data)",
)
