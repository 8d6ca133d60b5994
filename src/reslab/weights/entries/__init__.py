"""The published weights, one module per source; importing this package registers them all, in this order
(the order ``reslab weights list`` shows)."""

from importlib import import_module

for _source in ("torchvision", "timm", "keras", "akamaster"):
    import_module(f"{__name__}.{_source}")
