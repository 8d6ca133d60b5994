"""Weights entries: timm's weights for the ResNets it shares with reslab (timm's ``resnet18`` .. ``resnet152``
have torchvision's layout, so reslab's networks take them as they are).

Facts from timm 1.0.31's ``timm/models/resnet.py`` ``default_cfgs`` (URL: the GitHub release file, whose
``-xxxxxxxx`` suffix is the SHA-256 prefix timm's downloader checks; preprocessing: ``input_size``,
``crop_pct`` -> resize ``floor(224 / crop_pct)`` as timm's eval transform computes it, ``interpolation``,
mean / std) and the figures of timm's ``results/results-imagenet.csv`` (measured at the cfg's
``test_input_size``, 288 with crop_pct 1.0, for these "ResNet strikes back" weights).
"""

from __future__ import annotations

import math

from ..preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ..registry import WeightsEntry, register_weights

RSB = "https://github.com/{}/pytorch-image-models/releases/download/v0.1-rsb-weights/"
SOURCE = "timm results/results-imagenet.csv (ImageNet-1k val, 288x288, crop_pct 1.0)"

#: (model, tag, release owner, file name, top-1, top-5, timm's name)
_TABLE = [
    ("resnet18", "timm_a1_in1k", "huggingface", "resnet18_a1_0-d63eafa0.pth", 73.158, 91.026),
    ("resnet34", "timm_a1_in1k", "huggingface", "resnet34_a1_0-46f8f793.pth", 77.918, 93.766),
    ("resnet50", "timm_a1_in1k", "rwightman", "resnet50_a1_0-14fe96d1.pth", 81.214, 95.102),
    ("resnet101", "timm_a1_in1k", "huggingface", "resnet101_a1_0-cdcb52a9.pth", 82.322, 95.632),
    ("resnet101", "timm_a1h_in1k", "rwightman", "resnet101_a1h-36d3f2aa.pth", 82.778, 96.310),
    ("resnet152", "timm_a1_in1k", "huggingface", "resnet152_a1_0-2eee8a7a.pth", 82.732, 95.720),
]

#: every entry above is timm's ``_rcfg``: 224 input, crop_pct 0.95, bicubic, ImageNet mean / std
CROP_PCT = 0.95
PREPROCESSING = Preprocessing(
    input_size=(3, 224, 224),
    resize=math.floor(224 / CROP_PCT),
    interpolation="bicubic",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
)


def _register() -> None:
    for model, tag, owner, file_name, top1, top5 in _TABLE:
        timm_name = f"{model}.{tag.removeprefix('timm_')}"
        register_weights(
            WeightsEntry(
                model=model,
                tag=tag,
                url=RSB.format(owner) + file_name,
                hash="sha256:" + file_name.rsplit("-", 1)[1].split(".")[0],
                layout="timm",
                preprocessing=PREPROCESSING,
                classes="imagenet",
                metrics={"top1": top1, "top5": top5},
                metrics_source=SOURCE,
                license="Apache-2.0",
                notes=(
                    f"timm's {timm_name} (ResNet strikes back, arXiv:2110.00476). Evaluated at 224 with crop_pct "
                    "0.95 here; timm's published figure is at 288x288 with crop_pct 1.0 (its test_input_size)."
                ),
            )
        )


_register()
