"""The model catalogue: the registry's static facts, readable without torch.

Every registered model's name, family, input size, parameter count and MACs (at its default input)
and published reference, stored as ``model_catalog.json`` inside the package. ``reslab list`` reads it
instead of building every model, so it answers without importing torch. The file is generated from the
model and weights registries by ``make readme`` (``tools/update_readme.py``, which builds every model); a
test fails when it is stale. This module only reads it: it imports neither torch nor the models.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: the data-set families models are designed for (``reslab list --family``)
FAMILIES = ("imagenet", "cifar", "mnist")
CATALOG_PATH = Path(__file__).with_name("model_catalog.json")


def load_catalog(path: str | Path = CATALOG_PATH) -> list[dict[str, Any]]:
    """The catalogue's entries in registration order (one dict per model)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["models"]


def find_models(pattern: str = "*", family: str | None = None, entries: list[dict[str, Any]] | None = None):
    """Catalogue entries whose name matches the fnmatch ``pattern`` (case-insensitive) and ``family``:
    the same rule as :func:`reslab.list_models`.

    Raises:
        ConfigError: an unknown family.
    """
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    entries = load_catalog() if entries is None else entries
    return [
        e
        for e in entries
        if fnmatch.fnmatchcase(e["name"], pattern.lower()) and (family is None or e["family"] == family)
    ]


def format_macs(macs: int) -> str:
    """Multiply-accumulates with a unit: ``4.09G``, ``40.6M``, ``416K``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.3g}{unit}"
    return str(macs)
