"""Imports every module that registers models (the registry imports this once, lazily)."""

# The residual networks first: registration order is the order of `reslab list` and the README table.
from . import resnet  # noqa: F401

from . import alexnet, densenet, googlenet, lenet, vgg  # noqa: F401  # isort: skip
