"""akamaster/pytorch_resnet_cifar10's checkpoints (``pretrained_models/resnet20-12fca82f.th``):
``{"state_dict": {"module.conv1.weight", ..., "module.linear.weight"}, "best_prec1": ...}``.

The network is the CIFAR ResNet of the paper's Section 4.2 with option-A shortcuts, but its zero
channels are split on both sides (``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))``):
the weights load strictly into a ResNet that appends them, and then give wrong answers (23% on
CIFAR-10 for resnet20). So this layout asks for ``shortcut_pad="split"``. Recognised by the head's name
``linear`` (torchvision and timm call it ``fc``); ``linear`` is renamed ``fc`` and ``module.`` dropped.
The weights expect 32x32 CIFAR-10 images normalised with ImageNet's mean / std (akamaster's trainer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..classes import CIFAR10
from ..preprocessing import Preprocessing
from . import Loaded, strip_prefixes, tensor_dict

LAYOUT = "akamaster"
MODEL_ARGS = {"shortcut_pad": "split"}
PREPROCESSING = Preprocessing(input_size=(3, 32, 32), resize=32)


def _state_dict(obj: Any) -> dict | None:
    if isinstance(obj, dict) and tensor_dict(obj.get("state_dict")) is not None:
        return strip_prefixes(dict(obj["state_dict"]))
    return None


def sniff(path: Path, obj: Any) -> bool:
    sd = _state_dict(obj)
    return sd is not None and "linear.weight" in sd and "fc.weight" not in sd


def read(path: Path, obj: Any) -> Loaded:
    sd = _state_dict(obj)
    sd = {("fc." + k[len("linear.") :] if k.startswith("linear.") else k): v for k, v in sd.items()}
    meta: dict[str, Any] = {"preprocessing": PREPROCESSING.to_dict()}
    if sd["fc.weight"].shape[0] == len(CIFAR10):
        meta["class_names"] = list(CIFAR10)
    if "best_prec1" in obj:
        meta["best_prec1"] = float(obj["best_prec1"])
    return Loaded(sd, LAYOUT, model_args=dict(MODEL_ARGS), meta=meta)
