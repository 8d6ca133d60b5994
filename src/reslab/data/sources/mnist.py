"""MNIST and Fashion-MNIST from the official IDX files (gzip-compressed or not).

Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each with or without ``.gz``. The reader is lenient in where it looks
(``data_dir``, ``data_dir/<name>``, ``data_dir/<name>/raw`` and torchvision's ``MNIST/raw`` /
``FashionMNIST/raw``) and strict in what it accepts: the IDX magic number, the uint8 type code, the
dimension count and the exact byte length are all checked.

Images are 28x28 grey, input size (1, 28, 28); ``pad_to_32`` zero-pads them to (1, 32, 32), the input
of LeNet-5 (LeCun et al. 1998, Sec. II.B).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..download import download_file
from .base import ArrayData

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: official base URL and the MD5 of each ``.gz`` file
SOURCES: dict[str, dict] = {
    "mnist": {
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "torchvision_folder": "MNIST",
        "class_names": [str(i) for i in range(10)],
        "flip": False,  # a mirrored digit is not the same digit
    },
    "fashion_mnist": {
        "url": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "torchvision_folder": "FashionMNIST",
        "flip": True,  # a mirrored garment is the same garment
        "class_names": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
    },
}

_UINT8_TYPE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions (gzip-compressed if it ends in .gz).

    Raises:
        DataError: unreadable gzip, wrong magic / type / dimension count, or a byte length that does
            not match the header (truncated or padded); names the file.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"missing IDX file {path}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"corrupt or truncated IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()!r})")
    if raw[2] != _UINT8_TYPE:
        raise DataError(f"{path}: IDX type code must be 0x08 (unsigned bytes), got 0x{raw[2]:02x}")
    if raw[3] != ndim:
        raise DataError(f"{path}: expected {ndim} dimensions, the header says {raw[3]}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"truncated IDX file {path}: {len(raw)} bytes, shorter than its header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(f"{path}: header {dims} needs {expected} bytes, the file has {len(raw)} (truncated?)")
    # copy: frombuffer views the immutable bytes, and torch wants writable arrays
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _candidates(name: str, root: Path) -> list[Path]:
    tv = SOURCES[name]["torchvision_folder"]
    return [root, root / name, root / name / "raw", root / tv / "raw", root / tv]


def _find_file(folder: Path, stem: str) -> Path | None:
    for file in (folder / f"{stem}.gz", folder / stem):
        if file.is_file():
            return file
    return None


def find_mnist_files(name: str, root: Path) -> dict[str, Path] | None:
    """The four IDX files from the first candidate folder that has all of them, or None."""
    for folder in _candidates(name, root):
        found = {key: _find_file(folder, stem) for key, stem in FILES.items()}
        if all(found.values()):
            return {k: v for k, v in found.items() if v is not None}
    return None


def download_mnist(name: str, root: Path, url: str | None = None) -> Path:
    """Download the four official ``.gz`` files into ``root/<name>/`` (MD5-checked); returns that folder."""
    spec = SOURCES[name]
    base = (url or spec["url"]).rstrip("/") + "/"
    dest = root / name
    for filename, md5 in spec["md5"].items():
        download_file(base + filename, dest / filename, md5)
    return dest


def load_mnist(
    name: str, root: Path, *, download: bool = False, url: str | None = None, pad_to_32: bool = False
) -> ArrayData:
    """Load ``"mnist"`` or ``"fashion_mnist"`` from ``root``.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        root: data folder (see the module docstring for where the files may sit).
        download: fetch missing files from the official site (MD5-checked) into ``root/<name>/``.
        url: base URL override; the four file names are appended to it.
        pad_to_32: zero-pad the 28x28 images to 32x32.

    Raises:
        DataError: missing, truncated or inconsistent files (names them; suggests ``--download``).
        ChecksumError: a download with the wrong MD5 (deleted).
    """
    spec = SOURCES[name]
    files = find_mnist_files(name, root)
    if files is None and download:
        download_mnist(name, root, url)
        files = find_mnist_files(name, root)
    if files is None:
        looked = ", ".join(str(p) for p in _candidates(name, root))
        hint = "" if download else "; pass --download (download=True) to fetch them"
        raise DataError(
            f"{name}: the IDX files {', '.join(f + '[.gz]' for f in FILES.values())} were not found "
            f"together in any of {looked}{hint}"
        )
    arrays = {}
    for split in ("train", "test"):
        images = read_idx(files[f"{split}_images"], 3)
        labels = read_idx(files[f"{split}_labels"], 1).astype(np.int64)
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{files[f'{split}_images']} has {images.shape[0]} images but "
                f"{files[f'{split}_labels']} has {labels.shape[0]} labels"
            )
        if labels.size and labels.max() >= len(spec["class_names"]):
            raise DataError(f"{files[f'{split}_labels']}: label {labels.max()} is out of range [0, 10)")
        images = images[:, None]
        if pad_to_32:
            ph, pw = max(0, 32 - images.shape[2]), max(0, 32 - images.shape[3])
            images = np.pad(images, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
        arrays[split] = (np.ascontiguousarray(images), labels)
    return ArrayData(
        train_images=arrays["train"][0],
        train_labels=arrays["train"][1],
        test_images=arrays["test"][0],
        test_labels=arrays["test"][1],
        class_names=list(spec["class_names"]),
        flip=spec["flip"],
    )
