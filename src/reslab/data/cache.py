"""The array cache: a folder data set decoded once into a uint8 array, reused while nothing changes.

An entry is a pair in the cache directory (``$RESLAB_CACHE_DIR``, else ``~/.cache/reslab/arrays``):
``<source>-<key>.npy`` (uint8, N x C x H x W) and ``<source>-<key>.json`` (the member of every row and
the files that could not be decoded). ``key`` hashes the source's content listing (every image's
name, size and CRC or mtime) and the decoding options (size, channels, resize, the Pillow version);
``source`` hashes the source's path, so that when its content changes the new entry replaces the old
one instead of piling up. Both files are written to temporary names and renamed into place, the
.json last: a reader that finds the .json finds a complete .npy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = 1


def default_cache_dir() -> Path:
    """``$RESLAB_CACHE_DIR``, else ``~/.cache/reslab/arrays``."""
    env = os.environ.get("RESLAB_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "reslab" / "arrays"


def cache_stem(source: Path, listing: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    """``<source>-<key>``: 12 hex digits of the source's resolved path, 24 of its content and options."""
    src = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT, "options": dict(options)}, sort_keys=True).encode())
    for name in sorted(listing):
        digest.update(json.dumps([name, *listing[name]]).encode())
    return f"{src}-{digest.hexdigest()[:24]}"


def load_entry(directory: Path, stem: str) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The cached (images, meta) of ``stem``, or None when absent or unreadable (then rebuilt)."""
    meta_path, array_path = directory / f"{stem}.json", directory / f"{stem}.npy"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        images = np.load(array_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        logger.warning("array cache entry %s is unreadable (%s); decoding the images again", array_path, exc)
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != len(meta.get("files", ())):
        logger.warning("array cache entry %s does not match its index; decoding the images again", array_path)
        return None
    return images, meta


def save_entry(directory: Path, stem: str, images: np.ndarray, meta: Mapping[str, Any]) -> Path:
    """Write ``stem``'s pair atomically and remove older entries of the same source; returns the .npy.

    Raises:
        OSError: the directory cannot be created or written (the caller decides what to do).
    """
    directory.mkdir(parents=True, exist_ok=True)
    array_path, meta_path = directory / f"{stem}.npy", directory / f"{stem}.json"
    tmp_array = directory / f".{stem}.npy.tmp-{os.getpid()}"
    tmp_meta = directory / f".{stem}.json.tmp-{os.getpid()}"
    try:
        with open(tmp_array, "wb") as f:
            np.save(f, np.ascontiguousarray(images), allow_pickle=False)
        tmp_meta.write_text(json.dumps(dict(meta)))
        os.replace(tmp_array, array_path)
        os.replace(tmp_meta, meta_path)
    finally:
        tmp_array.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    source = stem.split("-", 1)[0]
    for old in directory.glob(f"{source}-*"):
        if old.stem != stem and old.suffix in (".npy", ".json"):
            old.unlink(missing_ok=True)
    return array_path
