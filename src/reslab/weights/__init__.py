"""Published weights: the registry (``MODEL.TAG`` entries), the cache and downloader, one reader per source
layout, and putting read weights into a built network (:mod:`.adapt`; :func:`reslab.create_model` drives it).

Names are imported on first use, so ``reslab weights list`` needs no torch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "Preprocessing": "preprocessing",
    "WeightsEntry": "registry",
    "get_weights": "registry",
    "list_weights": "registry",
    "weights_for": "registry",
    "register_weights": "registry",
    "class_names": "classes",
    "fetch": "hub",
    "read_weights": "layouts",
    "adapt_input_conv": "adapt",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
