"""Imports every module that registers models (``reslab.models`` imports this once, at import)."""

# The residual networks first: registration order is the order of `reslab list` and the README table.
from . import resnet  # noqa: F401

from . import alexnet, densenet, googlenet, lenet, vgg  # noqa: F401  # isort: skip

# the tutorials' networks last: they are composed of the families above
from . import tutorials  # noqa: F401  # isort: skip
