"""The published weights, one module per source; importing this package registers them all."""

from . import akamaster, keras, timm, torchvision  # noqa: F401
