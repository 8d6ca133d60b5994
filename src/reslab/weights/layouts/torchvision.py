"""torchvision's state dicts (``resnet50-0676ba61.pth``): a flat dict of tensors under torchvision's module
names, which are reslab's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Loaded, tensor_dict

LAYOUT = "torchvision"


def sniff(path: Path, obj: Any) -> bool:
    return tensor_dict(obj) is not None


def read(path: Path, obj: Any) -> Loaded:
    return Loaded(dict(obj), LAYOUT)
