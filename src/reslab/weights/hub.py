"""The weights cache and downloader (``$RESLAB_HOME``, default ``~/.cache/reslab``; torch.hub's cache is
also looked in). Placeholder interface: the weights-registry work completes the download path."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from .registry import WeightsEntry


def reslab_home() -> Path:
    """``$RESLAB_HOME``, else ``~/.cache/reslab``."""
    return Path(os.environ.get("RESLAB_HOME", "~/.cache/reslab")).expanduser()


def weights_dir() -> Path:
    """Where downloaded weights are kept: ``reslab_home() / "weights"``."""
    return reslab_home() / "weights"


def fetch(entry: WeightsEntry, *, progress: bool = True) -> Path:
    """The local path of ``entry``'s file, downloading it (hash-checked) when it is not cached."""
    path = weights_dir() / entry.file_name
    if path.is_file():
        return path
    raise CheckpointError(f"{entry.name}: {entry.file_name} is not in {weights_dir()} (download not implemented yet)")
