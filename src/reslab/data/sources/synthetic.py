"""Generated images with learnable class structure, for tests and benchmarks (no files involved).

Each class has a prototype: a random low-frequency pattern (a 4x4 grid of random values per channel,
bilinearly upsampled) mixed with a random class colour. A sample is its class prototype with a random
contrast and brightness plus per-pixel Gaussian noise, so classes are separable by a linear model yet
no two images are alike. Everything is drawn from ``torch.Generator``s seeded from ``seed``: the same
arguments give the same bytes on every machine.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import ArrayData

DEFAULT_CLASSES = 10
DEFAULT_SIZE = 32
DEFAULT_CHANNELS = 3
DEFAULT_TRAIN = 1024
#: the generated test split is a quarter of the training split's size (at least one sample per class)
TEST_RATIO = 4
NOISE_STD = 0.12


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]))


def _samples(prototypes: torch.Tensor, n: int, gen: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    k, c, h, w = prototypes.shape
    # Balanced classes in a random order.
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=gen)]
    contrast = 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=gen)
    brightness = 0.1 * torch.randn(n, 1, 1, 1, generator=gen)
    noise = NOISE_STD * torch.randn(n, c, h, w, generator=gen)
    x = (prototypes[labels] - 0.5) * contrast + 0.5 + brightness + noise
    images = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return images.numpy(), labels.numpy().astype(np.int64)


def make_synthetic_data(
    num_classes: int = DEFAULT_CLASSES,
    num_samples: int = DEFAULT_TRAIN,
    image_size: int = DEFAULT_SIZE,
    channels: int = DEFAULT_CHANNELS,
    seed: int = 0,
) -> ArrayData:
    """Generate a synthetic data set.

    Args:
        num_classes: number of classes (>= 2).
        num_samples: training samples; the test split has ``max(num_samples // 4, num_classes)``.
        image_size: side of the square images.
        channels: channels per image.
        seed: fixes prototypes and samples (train and test use separate streams, so changing
            ``num_samples`` does not change the test images).

    Returns:
        :class:`ArrayData` with class names ``class_0`` ...
    """
    proto_gen = _generator(seed, 0)
    grid = torch.rand(num_classes, channels, 4, 4, generator=proto_gen)
    pattern = F.interpolate(grid, size=(image_size, image_size), mode="bilinear", align_corners=False)
    colour = torch.rand(num_classes, channels, 1, 1, generator=proto_gen)
    prototypes = 0.5 * pattern + 0.5 * colour
    train_x, train_y = _samples(prototypes, num_samples, _generator(seed, 1))
    test_x, test_y = _samples(prototypes, max(num_samples // TEST_RATIO, num_classes), _generator(seed, 2))
    width = len(str(num_classes - 1))
    return ArrayData(
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        class_names=[f"class_{i:0{width}d}" for i in range(num_classes)],
        flip=True,
    )
