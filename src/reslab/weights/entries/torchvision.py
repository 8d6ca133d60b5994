"""Weights entries: torchvision's ImageNet-1k weights (``tv_in1k`` = IMAGENET1K_V1, ``tv2_in1k`` = IMAGENET1K_V2).

Facts from torchvision 0.29's ``torchvision/models/{resnet,vgg,densenet,googlenet,alexnet}.py``: the URL (its
``-xxxxxxxx`` suffix is the SHA-256 prefix ``torch.hub`` checks), the ``ImageClassification`` eval transform
(V1: resize 256, crop 224; V2: resize 232, crop 224; bilinear, ImageNet mean / std) and ``_metrics``
(acc@1 / acc@5 on the ImageNet-1k validation set, single 224 crop). The default tag is torchvision's
``DEFAULT`` (V2 where it exists).
"""

from __future__ import annotations

from ..preprocessing import imagenet
from ..registry import WeightsEntry, register_weights

BASE = "https://download.pytorch.org/models/"
SOURCE = "torchvision.models (ImageNet-1k val)"
LICENSE = "BSD-3-Clause"

#: model -> (tag, file name, acc@1, acc@5); the first row of a model with two is V1
_TABLE: dict[str, list[tuple[str, str, float, float]]] = {
    "resnet18": [("tv_in1k", "resnet18-f37072fd.pth", 69.758, 89.078)],
    "resnet34": [("tv_in1k", "resnet34-b627a593.pth", 73.314, 91.420)],
    "resnet50": [
        ("tv_in1k", "resnet50-0676ba61.pth", 76.130, 92.862),
        ("tv2_in1k", "resnet50-11ad3fa6.pth", 80.858, 95.434),
    ],
    "resnet101": [
        ("tv_in1k", "resnet101-63fe2227.pth", 77.374, 93.546),
        ("tv2_in1k", "resnet101-cd907fc2.pth", 81.886, 95.780),
    ],
    "resnet152": [
        ("tv_in1k", "resnet152-394f9c45.pth", 78.312, 94.046),
        ("tv2_in1k", "resnet152-f82ba261.pth", 82.284, 96.002),
    ],
    "vgg11": [("tv_in1k", "vgg11-8a719046.pth", 69.020, 88.628)],
    "vgg13": [("tv_in1k", "vgg13-19584684.pth", 69.928, 89.246)],
    "vgg16": [("tv_in1k", "vgg16-397923af.pth", 71.592, 90.382)],
    "vgg19": [("tv_in1k", "vgg19-dcbb9e9d.pth", 72.376, 90.876)],
    "vgg11_bn": [("tv_in1k", "vgg11_bn-6002323d.pth", 70.370, 89.810)],
    "vgg13_bn": [("tv_in1k", "vgg13_bn-abd245e5.pth", 71.586, 90.374)],
    "vgg16_bn": [("tv_in1k", "vgg16_bn-6c64b313.pth", 73.360, 91.516)],
    "vgg19_bn": [("tv_in1k", "vgg19_bn-c79401a0.pth", 74.218, 91.842)],
    "densenet121": [("tv_in1k", "densenet121-a639ec97.pth", 74.434, 91.972)],
    "densenet161": [("tv_in1k", "densenet161-8d451a50.pth", 77.138, 93.560)],
    "densenet169": [("tv_in1k", "densenet169-b2777c0a.pth", 75.600, 92.806)],
    "densenet201": [("tv_in1k", "densenet201-c1103571.pth", 76.896, 93.370)],
    "googlenet": [("tv_in1k", "googlenet-1378be20.pth", 69.778, 89.530)],
    "alexnet": [("tv_in1k", "alexnet-owt-7be5be79.pth", 56.522, 79.066)],
}

_NOTES = {
    "tv_in1k": "IMAGENET1K_V1.",
    "tv2_in1k": "IMAGENET1K_V2: torchvision's new training recipe (pytorch/vision#3995).",
}
#: GoogLeNet's weights were trained with transform_input=True (torchvision sets it when loading them)
_MODEL_ARGS = {"googlenet": {"transform_input": True}}


def _register() -> None:
    for model, rows in _TABLE.items():
        for tag, file_name, top1, top5 in rows:
            v2 = tag == "tv2_in1k"
            register_weights(
                WeightsEntry(
                    model=model,
                    tag=tag,
                    url=BASE + file_name,
                    hash="sha256:" + file_name.rsplit("-", 1)[1].split(".")[0],
                    layout="torchvision",
                    preprocessing=imagenet(resize=232 if v2 else 256, size=224),
                    classes="imagenet",
                    metrics={"top1": top1, "top5": top5},
                    metrics_source=SOURCE,
                    license=LICENSE,
                    model_args=dict(_MODEL_ARGS.get(model, {})),
                    default=(tag == rows[-1][0]),  # torchvision's DEFAULT: the newest of the model's weights
                    notes=_NOTES[tag],
                )
            )


_register()
