"""Writers of small fake data files in the official formats, for reader and download tests."""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_pickle(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``root/cifar-10-batches-py`` like the official files (bytes keys); return the raw rows."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for i in range(1, 6):
        data = _cifar_rows(rng, per_batch)
        lab = [int(v) for v in rng.integers(0, 10, per_batch)]
        write_pickle(folder / f"data_batch_{i}", {b"batch_label": b"fake", b"data": data, b"labels": lab})
        rows.append(data)
        labels += lab
    test = _cifar_rows(rng, n_test)
    test_labels = [int(v) for v in rng.integers(0, 10, n_test)]
    write_pickle(folder / "test_batch", {b"batch_label": b"fake test", b"data": test, b"labels": test_labels})
    write_pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES]})
    return {
        "train": np.concatenate(rows),
        "train_labels": np.array(labels),
        "test": test,
        "test_labels": np.array(test_labels),
    }


def write_cifar100(root: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = _cifar_rows(rng, n)
        fine = rng.integers(0, 100, n)
        coarse = fine // 5
        write_pickle(
            folder / split,
            {
                b"data": data,
                b"fine_labels": [int(v) for v in fine],
                b"coarse_labels": [int(v) for v in coarse],
            },
        )
        out[split], out[f"{split}_fine"], out[f"{split}_coarse"] = data, fine, coarse
    write_pickle(
        folder / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )
    return out


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 24, n_test: int = 12, gz: bool = True, seed: int = 0) -> dict:
    """Write the four MNIST IDX files (gzip or raw) into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return arrays


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (20, 16), noise_seed=None):
    """An RGB image of ``colour`` (plus a little noise if seeded), format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.empty((size[1], size[0], 3), dtype=np.uint8)
    arr[:] = colour
    if noise_seed is not None:
        noise = np.random.default_rng(noise_seed).integers(-20, 21, arr.shape)
        arr = np.clip(arr.astype(int) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


FOLDER_COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "emu": (30, 30, 200)}


def make_image_folder(
    root: Path, split: str | None, per_class: int = 4, suffixes=(".png", ".jpg"), size: tuple[int, int] = (20, 16)
) -> None:
    """``root/<split>/<class>/i.png|jpg`` (``split`` None: ``root/<class>/``), one colour per class."""
    base = root / split if split else root
    for c, (name, colour) in enumerate(FOLDER_COLOURS.items()):
        for i in range(per_class):
            write_image(base / name / f"{i}{suffixes[i % len(suffixes)]}", colour, size, noise_seed=100 * c + i)


def make_tar(path: Path, files: dict[str, bytes]) -> Path:
    """A .tar.gz with the given member names (written verbatim, so ``../x`` stays ``../x``)."""
    import io

    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def tar_directory(path: Path, source: Path, arcname: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source, arcname=arcname)
    return path
