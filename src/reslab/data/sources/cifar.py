"""CIFAR-10 and CIFAR-100 from the official "python version" batches (Krizhevsky 2009).

Layout: ``cifar-10-batches-py/`` holds ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta`` (``label_names``); ``cifar-100-python/`` holds ``train``, ``test`` and ``meta``
(``fine_label_names``, ``coarse_label_names``). Each batch is a pickled dict whose ``data`` is an
(N, 3072) uint8 array: the 1024 red values of a 32x32 image in row-major order, then green, then blue.

The batches are unpickled with a restricted unpickler that only rebuilds numpy arrays, so a tampered
file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ..download import download_and_extract
from .base import ArrayData

#: official archive, its MD5, the folder it unpacks to, and the file names inside
ARCHIVES: dict[str, dict[str, Any]] = {
    "cifar10": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
    },
    "cifar100": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
    },
}

IMAGE_BYTES = 3 * 32 * 32

# The globals a pickled numpy array needs (numpy 1.x and 2.x module names).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"missing CIFAR file {path}") from exc
    except OSError as exc:
        raise DataError(f"cannot read CIFAR file {path}: {exc}") from exc
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # truncation and corruption surface as many exception types
        raise DataError(f"corrupt or truncated CIFAR file {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"corrupt CIFAR file {path}: expected a pickled dict, got {type(obj).__name__}")
    # Official files have bytes keys (pickled by Python 2); accept str keys too.
    return {k.decode("latin-1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def count_images(path: Path) -> int:
    """How many images a CIFAR batch file holds (read with the same restricted unpickler)."""
    batch = _unpickle(path)
    labels = batch.get("labels", batch.get("fine_labels"))
    if labels is None:
        raise DataError(f"corrupt CIFAR file {path}: no 'labels' entry (found {sorted(batch)})")
    return len(labels)


def _names(values: Any, path: Path, key: str) -> list[str]:
    if not isinstance(values, (list, tuple)) or not values:
        raise DataError(f"corrupt CIFAR meta file {path}: {key!r} is not a non-empty list of names")
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def read_meta(path: Path, key: str) -> list[str]:
    """Class names under ``key`` (e.g. ``label_names``) of a CIFAR meta file."""
    meta = _unpickle(path)
    if key not in meta:
        raise DataError(f"corrupt CIFAR meta file {path}: no {key!r} entry (found {sorted(meta)})")
    return _names(meta[key], path, key)


def read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR batch file.

    Returns:
        uint8 images (N, 3, 32, 32) and int64 labels (N,).

    Raises:
        DataError: missing, unpicklable, wrong keys, wrong sizes or out-of-range labels (names the file).
    """
    batch = _unpickle(path)
    missing = [k for k in ("data", label_key) if k not in batch]
    if missing:
        raise DataError(f"corrupt CIFAR file {path}: missing {missing} (found keys {sorted(batch)})")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"corrupt CIFAR file {path}: 'data' must be a uint8 (N, {IMAGE_BYTES}) array, got {got}")
    try:
        labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"corrupt CIFAR file {path}: {label_key!r} is not a list of integers") from exc
    if labels.shape[0] != data.shape[0]:
        raise DataError(
            f"corrupt CIFAR file {path}: {data.shape[0]} images but {labels.shape[0]} {label_key!r} entries"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"corrupt CIFAR file {path}: labels must be in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    # Row-major per channel: (N, 3072) -> (N, 3, 32, 32) is a pure reshape.
    return data.reshape(-1, 3, 32, 32), labels


def find_cifar_dir(name: str, root: Path) -> Path | None:
    """The batch folder under ``root`` (``root/<folder>``), or ``root`` itself if it is that folder."""
    spec = ARCHIVES[name]
    for candidate in (root / spec["folder"], root):
        if (candidate / spec["meta"]).is_file() or (candidate.name == spec["folder"] and candidate.is_dir()):
            return candidate
    return None


def load_cifar(
    name: str, root: Path, *, download: bool = False, url: str | None = None, labels: str = "fine"
) -> ArrayData:
    """Load CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``) from ``root``.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: the folder containing the batch folder, or the batch folder itself.
        download: if the batch folder is missing, fetch the official archive into ``root``, check its
            MD5 and extract it.
        url: archive URL override (e.g. a mirror); the MD5 check still applies.
        labels: CIFAR-100 ``"fine"`` (100 classes) or ``"coarse"`` (20).

    Raises:
        DataError: the folder or a file is missing or corrupt (names it; suggests ``--download``).
        ChecksumError: a downloaded archive with the wrong MD5 (deleted, not extracted).
    """
    spec = ARCHIVES[name]
    folder = find_cifar_dir(name, root)
    if folder is None and download:
        download_and_extract(url or spec["url"], root, spec["md5"], filename=Path(spec["url"]).name)
        folder = find_cifar_dir(name, root)
    if folder is None:
        expected = ", ".join([*spec["train"], *spec["test"], spec["meta"]])
        hint = "" if download else "; pass --download (download=True) to fetch it"
        raise DataError(f"{name}: no {spec['folder']}/ under {root} (expected a folder with {expected}){hint}")
    if name == "cifar10":
        label_key, meta_key = "labels", "label_names"
    else:
        label_key, meta_key = f"{labels}_labels", f"{labels}_label_names"
    class_names = read_meta(folder / spec["meta"], meta_key)
    parts = {
        split: [read_batch(folder / f, label_key, len(class_names)) for f in spec[split]] for split in ("train", "test")
    }
    return ArrayData(
        train_images=np.concatenate([x for x, _ in parts["train"]]),
        train_labels=np.concatenate([y for _, y in parts["train"]]),
        test_images=np.concatenate([x for x, _ in parts["test"]]),
        test_labels=np.concatenate([y for _, y in parts["test"]]),
        class_names=class_names,
        flip=True,
    )
