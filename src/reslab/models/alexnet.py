"""AlexNet and ZF-Net: one table-driven implementation of the 2012-2013 ImageNet networks.

Papers:
- Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural Networks"
  (NIPS 2012): the architecture of Section 3 / Figure 2, here on one device (the paper splits the
  kernels of layers 1, 2, 4, 5 over two GPUs; single-tower layers keep the channel counts, so
  "dense connections" replace the two towers' partial ones).
- Krizhevsky, "One weird trick for parallelizing convolutional neural networks" (arXiv 1404.5997,
  2014): the 64-192-384-256-256 single-tower variant that torchvision calls AlexNet.
- Zeiler, Fergus, "Visualizing and Understanding Convolutional Networks" (ECCV 2014; arXiv
  1311.2901): ZF-Net, Figure 3; its deconvnet (Section 2.1) needs the max-pooling "switches",
  which :meth:`AlexNet.forward_features` returns on request.

The three layouts (:data:`LAYOUTS`) differ only in their feature table and classifier placement;
module names follow torchvision (``features.N``, ``classifier.N``) so its checkpoints load strictly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import DenseHeadModel
from .layers import conv2d_same, init_weights, local_response_norm, smallest_input_size, spatial_output_size
from .registry import register_model


def _conv(out_chs: int, kernel: int, stride: int, padding: int, split: bool = False) -> tuple:
    # split: in the paper's two-tower network this layer sees only its own tower's maps
    return ("conv", out_chs, kernel, stride, padding, split)


def _pool(kernel: int = 3, stride: int = 2, ceil_mode: bool = False) -> tuple:
    return ("pool", kernel, stride, ceil_mode)


LRN = ("lrn",)

#: Feature tables: each convolution is followed by a ReLU; "lrn" is local response normalisation
#: with the AlexNet paper's constants (k=2, n=5, alpha=1e-4, beta=0.75; Section 3.3).
LAYOUTS: dict[str, dict] = {
    # "One weird trick" / torchvision: 64-192-384-256-256, adaptive 6x6 pooling, dropout before fc6/fc7
    "torchvision": {
        "features": [
            _conv(64, 11, 4, 2),
            _pool(),
            _conv(192, 5, 1, 2),
            _pool(),
            _conv(384, 3, 1, 1),
            _conv(256, 3, 1, 1),
            _conv(256, 3, 1, 1),
            _pool(),
        ],
        "image_size": None,
        "dropout_after_hidden": False,
    },
    # AlexNet paper, Section 3.5: conv -> ReLU -> response norm -> overlapping 3x3/2 max-pool (3.4)
    "paper": {
        "features": [
            _conv(96, 11, 4, 0),
            LRN,
            _pool(),
            _conv(256, 5, 1, 2, True),
            LRN,
            _pool(),
            _conv(384, 3, 1, 1),
            _conv(384, 3, 1, 1, True),
            _conv(256, 3, 1, 1, True),
            _pool(),
        ],
        "image_size": 227,  # 227 - 11 is a multiple of 4: 55x55 after conv1, 6x6x256 into fc6
        "dropout_after_hidden": True,
    },
    # ZF-Net, Figure 3: conv -> ReLU -> 3x3/2 max-pool -> contrast normalisation. Conv1 padding 1 and
    # ceil-mode pooling reproduce the figure's map sizes 110, 55, 26, 13, 13, 13, 6.
    "zfnet": {
        "features": [
            _conv(96, 7, 2, 1),
            _pool(ceil_mode=True),
            LRN,
            _conv(256, 5, 2, 0),
            _pool(ceil_mode=True),
            LRN,
            _conv(384, 3, 1, 1),
            _conv(384, 3, 1, 1),
            _conv(256, 3, 1, 1),
            _pool(),
        ],
        "image_size": 224,
        "dropout_after_hidden": True,
    },
    # ZF-Net as tutorial 004's Keras code writes it: conv1 'valid' (109x109), conv2 5x5/2 with Keras's
    # 'same' padding (TF puts the odd pixel at the bottom / right: 54 -> 27), floor-mode pools, no
    # normalisation: maps 109, 54, 27, 13, 13, 13, 6.
    "zfnet_keras": {
        "features": [
            _conv(96, 7, 2, 0),
            _pool(),
            _conv(256, 5, 2, "same"),
            _pool(),
            _conv(384, 3, 1, 1),
            _conv(384, 3, 1, 1),
            _conv(256, 3, 1, 1),
            _pool(),
        ],
        "image_size": 224,
        "dropout_after_hidden": True,
    },
}

INITS = ("he", "paper")


class PoolSwitch(NamedTuple):
    """Where each max-pooling window took its maximum (ZF-Net's "switches", Section 2.1): the indices
    from ``max_pool2d(return_indices=True)`` and the pooled map's input size, which is what
    ``F.max_unpool2d(y, indices, kernel, stride, padding, output_size=input_size)`` needs."""

    indices: torch.Tensor
    input_size: torch.Size


class AlexNet(DenseHeadModel):
    """AlexNet (torchvision's single tower or the 2012 paper's) and ZF-Net, from a feature table.

    Args:
        layout: ``"torchvision"`` (64-192-384-256-256, adaptive 6x6 average pooling before the
            classifier, so any input of at least 63x63 works), ``"paper"`` (AlexNet 2012 on one
            device, 227x227, response normalisation after conv1/conv2), ``"zfnet"`` (ZF-Net,
            224x224, 7x7/2 first layer) or ``"zfnet_keras"`` (ZF-Net as tutorial 004 writes it). See
            :data:`LAYOUTS`.
        lrn: keep the layout's local response normalisation layers (False: none, as tutorial 004's
            Keras AlexNet, which leaves them out).
        dropout: dropout rate in the two 4096-unit layers (0.5 in both papers). torchvision drops
            the *inputs* of fc6 and fc7 (``classifier.0`` / ``.3``); the papers drop the *outputs* of
            the hidden layers, i.e. the inputs of fc7 and fc8.
        init: ``"he"`` (He-normal convolutions, linear layers N(0, 0.01), biases 0: torchvision's VGG
            scheme) or ``"paper"`` (all weights N(0, 0.01); AlexNet Section 5: biases 1 in conv2,
            conv4, conv5 and the hidden dense layers, else 0; ZF-Net Section 3: biases 0).
        towers: 1 (one device, dense connections) or 2 (``layout="paper"`` only): conv2, conv4 and
            conv5 as grouped convolutions, the paper's two-GPU connectivity (Section 3.2, Figure 2),
            60,965,224 parameters, the paper's "60 million".
        num_classes: classifier outputs (0: no classifier; ``model(x)`` gives fc7's output).
        in_chans: input channels.

    Raises:
        ConfigError: an unknown layout or init, or a dropout rate outside [0, 1).
    """

    def __init__(
        self,
        *,
        layout: str = "torchvision",
        dropout: float = 0.5,
        init: str = "he",
        towers: int = 1,
        lrn: bool = True,
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if towers not in (1, 2) or (towers == 2 and layout != "paper"):
            raise ConfigError(f"towers must be 1, or 2 with layout='paper' (the 2012 two-GPU split), got {towers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        spec = LAYOUTS[layout]
        self.layout, self.num_classes, self.in_chans = layout, num_classes, in_chans

        layers: list[nn.Module] = []
        self.feature_info = []
        chs, reduction = in_chans, 1
        for entry in spec["features"]:
            if entry[0] == "conv":
                _, out_chs, k, s, p, split = entry
                groups = towers if split else 1
                conv = (
                    conv2d_same(chs, out_chs, k, s) if p == "same" else nn.Conv2d(chs, out_chs, k, s, p, groups=groups)
                )
                layers += [conv, nn.ReLU(inplace=True)]
                chs, reduction = out_chs, reduction * s
            elif entry[0] == "pool":
                _, k, s, ceil_mode = entry
                layers.append(nn.MaxPool2d(k, s, ceil_mode=ceil_mode))
                reduction *= s
                self.feature_info.append(
                    {"num_chs": chs, "reduction": reduction, "module": f"features.{len(layers) - 1}"}
                )
            elif lrn:
                layers.append(local_response_norm(5, alpha=1e-4, beta=0.75, k=2.0, alpha_applies_to="sum"))
        self.features = nn.Sequential(*layers)
        sizing = [m for m in self.features if isinstance(m, nn.Conv2d | nn.MaxPool2d)]

        if spec["image_size"] is None:
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.min_input_size = smallest_input_size(sizing)
            flat = chs * 6 * 6
        else:
            self.fixed_input_size = self.min_input_size = spec["image_size"]
            side = spec["image_size"]
            for m in sizing:
                side = spatial_output_size(side, m)
            flat = chs * side * side  # 256 * 6 * 6 = 9216 for both papers
        self.num_features = 4096
        fc6, fc7 = nn.Linear(flat, 4096), nn.Linear(4096, 4096)
        fc8 = nn.Linear(4096, num_classes) if num_classes > 0 else nn.Identity()
        if spec["dropout_after_hidden"]:  # the papers: dropout on the hidden layers' outputs
            head = [fc6, nn.ReLU(True), nn.Dropout(dropout), fc7, nn.ReLU(True), nn.Dropout(dropout), fc8]
        else:  # torchvision: dropout on the inputs of fc6 and fc7
            head = [nn.Dropout(dropout), fc6, nn.ReLU(True), nn.Dropout(dropout), fc7, nn.ReLU(True), fc8]
        self.classifier = nn.Sequential(*head)

        if init == "he":
            init_weights(self, linear="normal")
        else:
            self._init_paper(ones_bias=layout == "paper")

    def _init_paper(self, ones_bias: bool) -> None:
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        linears = [m for m in self.classifier if isinstance(m, nn.Linear)]
        for m in convs + linears:
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        if ones_bias:
            # "to accelerate the early stages of learning by providing the ReLUs with positive inputs"
            for m in [convs[1], convs[3], convs[4], *linears[:2]]:
                nn.init.ones_(m.bias)

    def forward_features(self, x: torch.Tensor, return_indices: bool = False):
        """The convolutional features; with ``return_indices=True`` also the max-pooling switches.

        Returns:
            The feature map, or ``(features, switches)`` where ``switches`` maps each max-pool's
            module name (``"features.2"``, ...) to a :class:`PoolSwitch` (ZF-Net's deconvnet input).
        """
        if not return_indices:
            return self.features(x)
        switches: dict[str, PoolSwitch] = {}
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.MaxPool2d):
                size = x.shape[-2:]
                x, idx = F.max_pool2d(
                    x,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    ceil_mode=layer.ceil_mode,
                    return_indices=True,
                )
                switches[f"features.{i}"] = PoolSwitch(idx, size)
            else:
                x = layer(x)
        return x, switches

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if hasattr(self, "avgpool"):
            x = self.avgpool(x)
        x = torch.flatten(x, 1)
        if pre_logits:
            return self.classifier[:6](x)
        return self.classifier(x)


ALEXNET_PAPER = "Krizhevsky et al. 2012, ImageNet Classification with Deep Convolutional Neural Networks (NIPS)"
ONE_WEIRD_TRICK = "Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks (arXiv 1404.5997)"
ZFNET_PAPER = "Zeiler and Fergus 2013, Visualizing and Understanding Convolutional Networks (arXiv 1311.2901)"
IMAGENET = {"family": "imagenet", "num_classes": 1000}

register_model(
    "alexnet",
    AlexNet,
    **IMAGENET,
    input_size=(3, 224, 224),
    paper=ONE_WEIRD_TRICK,
    params=61_100_840,
    params_source="torchvision.models",
    description="AlexNet, torchvision's single-tower layout (64-192-384-256-256, adaptive 6x6 pool)",
)
register_model(
    "alexnet_paper",
    AlexNet,
    **IMAGENET,
    input_size=(3, 227, 227),
    paper=ALEXNET_PAPER,
    params=62_378_344,
    params_source="layer arithmetic of Section 3.5 on one device (the paper's two towers, towers=2: "
    "60,965,224, its '60 million')",
    accuracy="ILSVRC-2010 test top-1 error 37.5% (paper, Table 1)",
    description="AlexNet as in the 2012 paper, one device: 96-256-384-384-256, response normalisation, 227x227 input",
    layout="paper",
    init="paper",
)
register_model(
    "zfnet",
    AlexNet,
    **IMAGENET,
    input_size=(3, 224, 224),
    paper=ZFNET_PAPER,
    description="ZF-Net (Figure 3): 7x7/2 first layer, 5x5/2 second, dense connections, 224x224 input; "
    "forward_features(x, return_indices=True) gives the max-pool switches",
    layout="zfnet",
    init="paper",
)
