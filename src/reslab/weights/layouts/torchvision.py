"""torchvision's state dicts (``resnet50-0676ba61.pth``): a flat dict of tensors under torchvision's module
names, which are reslab's. Also read here: the pre-0.3 DenseNet keys (``denselayer1.norm.1.weight``,
renamed as torchvision's own ``_load_state_dict`` does) and wrappers' ``module.`` / ``_orig_mod.``
prefixes (a state dict saved from DataParallel or a compiled model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import Loaded, strip_prefixes, tensor_dict

LAYOUT = "torchvision"


def sniff(path: Path, obj: Any) -> bool:
    return tensor_dict(obj) is not None


def clean_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` with wrapper prefixes stripped and old DenseNet keys renamed (others unchanged)."""
    from ...models.densenet import remap_old_densenet_keys

    return remap_old_densenet_keys(strip_prefixes(dict(state_dict)))


def read(path: Path, obj: Any) -> Loaded:
    return Loaded(clean_keys(obj), LAYOUT)
