"""reslab's own checkpoints (``train`` writes them): weights, model name and arguments, classes, preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Loaded, strip_prefixes

LAYOUT = "reslab"
#: the marker every reslab checkpoint carries (``reslab.training.checkpoint`` writes it)
FORMAT = "reslab-checkpoint"


def sniff(path: Path, obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def read(path: Path, obj: Any) -> Loaded:
    info = obj.get("data_info") or {}
    meta = {
        "model_name": obj.get("model_name"),
        "num_classes": obj.get("num_classes"),
        "class_names": obj.get("class_names"),
        "in_chans": obj.get("in_chans"),
        "arch_revision": obj.get("arch_revision", 1),
    }
    if info.get("preprocessing"):
        meta["preprocessing"] = info["preprocessing"]
    return Loaded(strip_prefixes(obj["model"]), LAYOUT, model_args=dict(obj.get("model_args") or {}), meta=meta)
