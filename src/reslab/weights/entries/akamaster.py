"""Weights entries: akamaster/pytorch_resnet_cifar10's CIFAR-10 ResNets (``akamaster_cifar10``).

Facts from the repository's README (file links, "Test err(this impl.)") and trainer.py (32x32 inputs, no
resize, normalised with ImageNet's mean / std; the checkpoint is ``{"state_dict": ..., "best_prec1": ...}``
with ``module.`` prefixes and a ``linear`` head). The networks use option A shortcuts with the new zero
channels split on both sides (``F.pad(..., (0, 0, 0, 0, planes // 4, planes // 4))``), hence
``shortcut_pad="split"``. License: BSD-2-Clause (the repository's LICENSE).
"""

from __future__ import annotations

from ..preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ..registry import WeightsEntry, register_weights

BASE = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
SOURCE = "github.com/akamaster/pytorch_resnet_cifar10 README (CIFAR-10 test error)"

#: model -> (file name, published test error in per cent)
_TABLE = {
    "resnet20": ("resnet20-12fca82f.th", 8.27),
    "resnet32": ("resnet32-d509ac18.th", 7.37),
    "resnet44": ("resnet44-014dd654.th", 6.90),
    "resnet56": ("resnet56-4bfd9763.th", 6.61),
    "resnet110": ("resnet110-1d1ed7c2.th", 6.32),
    "resnet1202": ("resnet1202-f3b1deed.th", 6.18),
}

PREPROCESSING = Preprocessing(
    input_size=(3, 32, 32), resize=32, crop="center", interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD
)


def _register() -> None:
    for model, (file_name, error) in _TABLE.items():
        register_weights(
            WeightsEntry(
                model=model,
                tag="akamaster_cifar10",
                url=BASE + file_name,
                hash="sha256:" + file_name.rsplit("-", 1)[1].split(".")[0],
                layout="akamaster",
                preprocessing=PREPROCESSING,
                classes="cifar10",
                metrics={"top1": round(100.0 - error, 2)},
                metrics_source=SOURCE,
                license="BSD-2-Clause",
                model_args={"shortcut_pad": "split"},
                default=True,
                notes=(
                    "Trained on all 50k CIFAR-10 training images; the published figure is the best test-set "
                    "accuracy during training (the model was selected on the test set, no validation split)."
                ),
            )
        )


_register()
