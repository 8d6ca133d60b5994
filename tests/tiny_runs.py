"""The tiny run many tests start from: resnet20 at widths 4-8-8, one epoch on the CPU, no progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reslab.training import train


def tiny_options(**options: Any) -> dict[str, Any]:
    """reslab.train's keywords for the tiny run, with ``options`` added (or replacing them)."""
    return {
        "model": "resnet20",
        "model_args": {"widths": [4, 8, 8]},
        "epochs": 1,
        "device": "cpu",
        "progress": "none",
        **options,
    }


def train_tiny(out: str | Path, **options: Any) -> Path:
    """Train the tiny run into ``out`` (the data, and anything else, from ``options``); returns ``out``."""
    train(**tiny_options(out=str(out), **options))
    return Path(out)
