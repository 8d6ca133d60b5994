"""Imports every module that registers models (the registry imports this once, lazily)."""

from . import resnet  # noqa: F401

from . import alexnet, densenet, googlenet, lenet, vgg  # noqa: F401  # isort: skip
