"""VGG (Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015; arXiv 1409.1556): configurations A, B, D and E of the paper's Table 1, with and without
batch normalisation (the ``_bn`` twins, a torchvision addition; the paper predates BN).

One table (:data:`CONFIGS`) expanded by one function (:func:`make_vgg_features`). Module names
equal torchvision's (``features.N``, ``classifier.0/3/6``), so its checkpoints load strictly, and
the convolutions carry biases as in the paper and Keras (``keras.applications.VGG16`` converts
exactly; see ``reslab.weights.keras``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import DenseHeadModel
from .layers import conv2d_same, init_weights, smallest_input_size
from .registry import register_model

#: The paper's Table 1: numbers are 3x3 convolution widths, "M" a 2x2/2 max-pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}
#: weight layers (convolutions + 3 dense layers) of each configuration
DEPTHS = {"A": 11, "B": 13, "D": 16, "E": 19}


def make_vgg_features(
    config: list[int | str], in_chans: int, *, batch_norm: bool, bn_eps: float = 1e-5
) -> nn.Sequential:
    """Expand a configuration into ``features``: 3x3/1 convolutions (padding 1, biased), optional BN,
    ReLU, and 2x2/2 max-pools for "M" (Section 2.1). Indices match torchvision's ``make_layers``.

    An entry ``[width, [kh, kw]]`` is a convolution of another kernel with Keras's 'same' padding (tutorial
    004's VGG-16 writes one as ``(3, 2)``: TF pads its width 0 left, 1 right)."""
    layers: list[nn.Module] = []
    chs = in_chans
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        kernel = None
        if isinstance(v, tuple | list) and len(v) == 2:
            v, kernel = v
            sides_ok = isinstance(kernel, tuple | list) and len(kernel) == 2
            if not sides_ok or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in kernel):
                raise ConfigError(
                    f"a VGG configuration's [width, [kh, kw]] entry needs two kernel sides, got {kernel!r}"
                )
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"a VGG configuration holds widths >= 1 and 'M', got {v!r}")
        if kernel is None:
            layers.append(nn.Conv2d(chs, v, kernel_size=3, padding=1))
        else:
            layers.append(conv2d_same(chs, v, tuple(kernel)))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v, eps=bn_eps))
        layers.append(nn.ReLU(inplace=True))
        chs = v
    return nn.Sequential(*layers)


class VGG(DenseHeadModel):
    """VGG-11/13/16/19 (configurations A/B/D/E of Table 1), optionally with batch normalisation.

    The classifier is the paper's (Section 2.1): 4096-4096-classes with dropout 0.5 after the two
    hidden layers (Section 3.1). Before it, as in torchvision, an adaptive average pool to 7x7
    (an identity at 224x224) lets any input of at least 32x32 through; the paper instead converts
    the dense layers to convolutions for dense evaluation at other sizes (Section 3.2).

    Args:
        config: ``"A"`` (VGG-11), ``"B"`` (13), ``"D"`` (16), ``"E"`` (19), or a custom list of
            widths and ``"M"``.
        batch_norm: add BN after every convolution (torchvision's ``vgg*_bn``).
        dropout: dropout rate of the two hidden dense layers.
        bn_eps: BN epsilon (with ``batch_norm``).
        hidden: width of the two hidden dense layers (paper: 4096). A smaller one (512, say) with
            ``pool_size=1`` makes a CIFAR-sized VGG that trains on a CPU.
        pool_size: side of the adaptive average pool before the classifier (torchvision: 7; the dense
            layers see ``width * pool_size**2`` inputs).
        num_classes: classifier outputs (0: no classifier; ``model(x)`` gives fc7's ``hidden`` features).
        in_chans: input channels.

    Init: He-normal (fan-out) convolutions, N(0, 0.01) dense layers, zero biases (torchvision; the
    paper initialised A randomly and deeper nets from A, then noted Glorot init works as well).

    Raises:
        ConfigError: an unknown configuration, a dropout rate outside [0, 1), or a ``hidden`` /
            ``pool_size`` that is not a whole number >= 1.
    """

    def __init__(
        self,
        *,
        config: str | list = "D",
        batch_norm: bool = False,
        dropout: float = 0.5,
        bn_eps: float = 1e-5,
        hidden: int = 4096,
        pool_size: int = 7,
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ConfigError(
                    f"config must be one of {', '.join(CONFIGS)} (or a list of widths and 'M'), got {config!r}"
                )
            table = CONFIGS[config]
        else:
            table = list(config)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        for name, value in (("hidden", hidden), ("pool_size", pool_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.features = make_vgg_features(table, in_chans, batch_norm=batch_norm, bn_eps=bn_eps)
        widths = [v[0] if isinstance(v, tuple | list) else v for v in table if v != "M"]
        if not widths:
            raise ConfigError("a VGG configuration needs at least one convolution")
        out_chs = widths[-1]

        self.feature_info = []
        chs, reduction = in_chans, 1
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):
                chs = m.out_channels
            elif isinstance(m, nn.MaxPool2d):
                reduction *= 2
                self.feature_info.append({"num_chs": chs, "reduction": reduction, "module": f"features.{i}"})
        self.min_input_size = smallest_input_size(m for m in self.features if isinstance(m, nn.MaxPool2d))

        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.num_features = hidden
        self.classifier = nn.Sequential(
            nn.Linear(out_chs * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity(),
        )
        init_weights(self, linear="normal")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier[:6](x) if pre_logits else self.classifier(x)


# --------------------------------------------------------------------------------------------------

VGG_PAPER = "Simonyan and Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image Recognition"
_TORCHVISION = {  # name: (config, batch_norm, parameters)
    "vgg11": ("A", False, 132_863_336),
    "vgg13": ("B", False, 133_047_848),
    "vgg16": ("D", False, 138_357_544),
    "vgg19": ("E", False, 143_667_240),
    "vgg11_bn": ("A", True, 132_868_840),
    "vgg13_bn": ("B", True, 133_053_736),
    "vgg16_bn": ("D", True, 138_365_992),
    "vgg19_bn": ("E", True, 143_678_248),
}
for _name, (_cfg, _bn, _params) in _TORCHVISION.items():
    register_model(
        _name,
        VGG,
        family="imagenet",
        input_size=(3, 224, 224),
        num_classes=1000,
        paper=VGG_PAPER,
        params=_params,
        params_source="torchvision.models",
        description=f"VGG-{DEPTHS[_cfg]} (configuration {_cfg}, Table 1){' with batch norm' if _bn else ''}",
        config=_cfg,
        batch_norm=_bn,
    )
