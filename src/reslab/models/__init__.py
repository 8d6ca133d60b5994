"""reslab's models: one registry, one parametrised implementation per family."""

from .base import ReslabModel
from .fuse import count_batchnorms, fuse
from .registry import ModelEntry, build_model, get_model_entry, list_models, register_model
from .summary import ModelSummary, summary

# Register every model now, whichever model module is imported first: registration order is the order
# of `reslab list` and of the README table.
from . import _all  # noqa: E402, F401  # isort: skip

__all__ = [
    "ModelEntry",
    "ModelSummary",
    "ReslabModel",
    "build_model",
    "count_batchnorms",
    "fuse",
    "get_model_entry",
    "list_models",
    "register_model",
    "summary",
]
