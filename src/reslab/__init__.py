"""reslab: the classic image-classification CNNs, centred on residual networks.

Public API: :func:`create_model`, :func:`list_models`, :func:`summary`, :func:`train`,
:func:`evaluate`, :func:`predict`.

The names are imported on first use (PEP 562), so ``import reslab`` -- and commands such as
``reslab list`` -- do not pay for importing torch until a model or the trainer is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ReslabError

__version__ = "0.1.0"

#: public name -> the subpackage that defines it
_LAZY = {
    "create_model": "models",
    "get_model_entry": "models",
    "list_models": "models",
    "summary": "models",
    "TrainConfig": "training",
    "TrainResult": "training",
    "evaluate": "training",
    "predict": "training",
    "train": "training",
}

__all__ = ["ReslabError", "__version__", *sorted(_LAZY)]


#: subpackages reachable as attributes after a bare ``import reslab`` (as when __init__ imported them)
_SUBPACKAGES = ("data", "interop", "models", "training")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))
