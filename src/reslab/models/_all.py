"""Imports every module that registers models (the registry imports this once, lazily)."""

from . import resnet  # noqa: F401
