"""timm's training checkpoints (``train.py``'s ``checkpoint-*.pth.tar``, ``model_best.pth.tar``): a dict
nesting the weights under ``state_dict_ema`` / ``model_ema`` / ``state_dict`` / ``model`` beside the
epoch, optimizer and arguments, keys possibly prefixed ``module.`` (DDP) or ``_orig_mod.``
(``torch.compile``). timm's ResNet key names are torchvision's, hence reslab's.

When a checkpoint holds both, the EMA weights are read, as timm's own ``load_checkpoint`` does
(``use_ema=True`` by default) and because timm's published ``*_in1k`` weights are the EMA ones where a
run kept an EMA; ``Loaded.meta["weights_key"]`` says which key was read. (timm's *published* weight
files are flat state dicts, read by the torchvision layout.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Loaded, tensor_dict
from .torchvision import clean_keys

LAYOUT = "timm"
#: the keys timm checkpoints nest their weights under, in the order they are preferred
WEIGHTS_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


def _weights_key(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    return next((k for k in WEIGHTS_KEYS if tensor_dict(obj.get(k)) is not None), None)


def sniff(path: Path, obj: Any) -> bool:
    return _weights_key(obj) is not None


def read(path: Path, obj: Any) -> Loaded:
    key = _weights_key(obj)
    return Loaded(clean_keys(obj[key]), LAYOUT, meta={"weights_key": key})
