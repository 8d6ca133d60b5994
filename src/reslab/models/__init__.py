"""reslab's models: one registry, one parametrised implementation per family."""

from .base import ReslabModel
from .registry import ModelEntry, create_model, get_model_entry, list_models, register_model
from .summary import ModelSummary, summary

__all__ = [
    "ModelEntry",
    "ModelSummary",
    "ReslabModel",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
    "summary",
]
