"""reslab: the classic image-classification CNNs, centred on residual networks.

Public API: :func:`create_model`, :func:`list_models`, :func:`summary`, :func:`train`,
:func:`evaluate`, :func:`predict`.

The names are imported on first use (PEP 562), so ``import reslab`` -- and commands such as
``reslab list`` -- do not pay for importing torch until a model or the trainer is needed.
"""

from __future__ import annotations

from .errors import ReslabError
from .lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> the subpackage that defines it
_LAZY = {
    "create_model": "factory",
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
_SUBPACKAGES = ("data", "models", "training")

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, _SUBPACKAGES)
