"""scikit-learn's bundled 8x8 handwritten digits: the offline default, no download needed.

1,797 grey images, values 0..16 scaled to 0..255 (ink is bright, as in MNIST), split once into a fixed
stratified 80 % train / 20 % test (seed 0) that plays the role of the official test split.
"""

from __future__ import annotations

import numpy as np

from ...errors import DataError
from .base import ArrayData, resize_images, stratified_split

#: fraction of every class that forms the fixed test split, and the seed that picks it
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits_data(image_size: int | None = None) -> ArrayData:
    """Load the digits as :class:`ArrayData`.

    Args:
        image_size: output side in pixels (default 8, the native size); other sizes are bilinear
            resizes done once at load time (e.g. 32 for CIFAR-shaped models).

    Raises:
        DataError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # scikit-learn is an optional dependency, needed only here
        raise DataError(
            "the digits data set needs scikit-learn (sklearn.datasets.load_digits); "
            "install it with `pip install scikit-learn`"
        ) from exc
    bunch = load_digits()
    images = np.round(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = np.asarray(bunch.target, dtype=np.int64)
    if image_size is not None:
        images = resize_images(images, image_size)
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    return ArrayData(
        train_images=np.ascontiguousarray(images[train_idx]),
        train_labels=labels[train_idx],
        test_images=np.ascontiguousarray(images[test_idx]),
        test_labels=labels[test_idx],
        class_names=[str(i) for i in range(10)],
        flip=False,
    )
