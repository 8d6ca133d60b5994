"""Tutorial 002's PyTorch ResNet50V2 (its ``Block2`` / ``Stack2`` / ``ResNet50V2`` modules): the ``state_dict``
its own code saves (``torch.save(model.state_dict(), path)``, or a dict holding one under ``state_dict`` /
``model``), renamed to reslab's ``tutorial_resnet50v2`` (a ResNet with keras.applications' V2 layout).

The tutorial's names, and reslab's:

- ``conv1.conv`` (the stem conv, with bias) -> ``conv1``;
- ``conv{2,3,4,5}.conv.{i}`` (a ``Stack2``'s i-th ``Block2``) -> ``layer{1,2,3,4}.{i}``, and in a block
  ``preact.0`` -> ``bn1`` (the BN-ReLU before the branch), ``conv1.0`` / ``conv1.1`` -> ``conv1`` / ``bn2``,
  ``conv2.0`` / ``conv2.1`` -> ``conv2`` / ``bn3``, ``conv3`` -> ``conv3``, ``short`` (a projection) ->
  ``downsample.0`` (a strided block's 1x1 max-pool shortcut has no weights);
- ``post.bn`` -> ``post_bn``, ``post.fc`` -> ``fc``.

Recognised by the keys ``conv1.conv.weight`` and ``conv2.conv.0.preact.0.weight``. The file records no
preprocessing (the tutorial normalises as its data pipeline chooses).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import Loaded, strip_prefixes, tensor_dict

LAYOUT = "tutorial002"
_BLOCK = re.compile(r"conv([2-5])\.conv\.(\d+)\.(.+)")
_INSIDE = {
    "preact.0.": "bn1.",
    "conv1.0.": "conv1.",
    "conv1.1.": "bn2.",
    "conv2.0.": "conv2.",
    "conv2.1.": "bn3.",
    "conv3.": "conv3.",
    "short.": "downsample.0.",
}


def _state_dict(obj: Any) -> dict | None:
    for candidate in (obj, *(obj.get(k) for k in ("state_dict", "model") if isinstance(obj, dict))):
        sd = tensor_dict(candidate)
        if sd is not None:
            return strip_prefixes(dict(sd))
    return None


def sniff(path: Path, obj: Any) -> bool:
    sd = _state_dict(obj)
    return sd is not None and "conv1.conv.weight" in sd and "conv2.conv.0.preact.0.weight" in sd


def rename(key: str) -> str:
    """One of the tutorial's state-dict keys as reslab's (see the module docstring); unknown keys unchanged."""
    if key.startswith("conv1.conv."):
        return "conv1." + key[len("conv1.conv.") :]
    if key.startswith("post.bn."):
        return "post_bn." + key[len("post.bn.") :]
    if key.startswith("post.fc."):
        return "fc." + key[len("post.fc.") :]
    m = _BLOCK.fullmatch(key)
    if m:
        stage, block, rest = m.groups()
        for theirs, ours in _INSIDE.items():
            if rest.startswith(theirs):
                return f"layer{int(stage) - 1}.{block}.{ours}{rest[len(theirs) :]}"
    return key


def read(path: Path, obj: Any) -> Loaded:
    sd = _state_dict(obj)
    return Loaded({rename(k): v for k, v in sd.items()}, LAYOUT, meta={"model_name": "tutorial_resnet50v2"})
