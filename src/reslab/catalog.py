"""The model catalogue: the registry's static facts, readable without torch.

Every registered model's name, family, input size, parameter count and MACs (at its default input)
and published reference, stored as ``model_catalog.json`` inside the package. ``reslab list`` reads it
instead of building every model, so it answers without importing torch. The file is generated from the
registry by ``make readme`` (``tools/update_readme.py``); a test fails when it is stale.
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


def build_catalog() -> dict[str, Any]:
    """The catalogue computed from the registry (builds every model on the meta device: imports torch)."""
    import torch

    from .models import create_model, get_model_entry, list_models, summary

    models = []
    for name in list_models():
        e = get_model_entry(name)
        with torch.device("meta"):
            s = summary(create_model(name), e.input_size)
        models.append(
            {
                "name": name,
                "family": e.family,
                "input_size": list(e.input_size),
                "num_classes": e.num_classes,
                "params": s.total_params,
                "macs": s.macs,
                "published_params": e.params,
                "params_source": e.params_source,
                "accuracy": e.accuracy,
                "paper": e.paper,
            }
        )
    return {"generated_by": "make readme (tools/update_readme.py)", "models": models}


def write_catalog(path: str | Path = CATALOG_PATH) -> Path:
    """Regenerate the catalogue file from the registry; returns its path."""
    path = Path(path)
    path.write_text(json.dumps(build_catalog(), indent=1) + "\n", encoding="utf-8")
    return path


def format_macs(macs: int) -> str:
    """Multiply-accumulates with a unit: ``4.09G``, ``40.6M``, ``416K``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.3g}{unit}"
    return str(macs)


def markdown_table(pattern: str = "*", entries: list[dict[str, Any]] | None = None) -> str:
    """The README's model table (names, counts, MACs, published figures), from the catalogue."""
    lines = [
        "| model | family | input | params | MACs | published params | published reference |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for e in find_models(pattern, entries=entries):
        ref = "; ".join(x for x in (e["accuracy"], f"params: {e['params_source']}" if e["params_source"] else "") if x)
        published = f"{e['published_params']:,}" if e["published_params"] is not None else ""
        lines.append(
            f"| `{e['name']}` | {e['family']} | {'x'.join(map(str, e['input_size']))} | {e['params']:,} | "
            f"{format_macs(e['macs'])} | {published} | {ref} |"
        )
    return "\n".join(lines)
