"""reslab's data: sources (CIFAR, MNIST, image folders, digits, synthetic), device-resident loaders and
batched augmentation.

Public API: :func:`build_data`, :func:`list_datasets`, :class:`DataBundle`, :func:`preprocess_image`,
:func:`save_batch_grid`, :func:`save_preview`.
"""

from .build import build_data, data_channels, list_datasets
from .bundle import DataBundle
from .loader import BatchLoader, DeviceLoader
from .preview import save_batch_grid, save_preview
from .transforms import preprocess_image

__all__ = [
    "BatchLoader",
    "DataBundle",
    "DeviceLoader",
    "build_data",
    "data_channels",
    "list_datasets",
    "preprocess_image",
    "save_batch_grid",
    "save_preview",
]
