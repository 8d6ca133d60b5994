"""The tutorials' networks as their code writes them: ``tutorial_*``.

reslab grew out of five tutorials; their readers arrive with the tutorial's code open and expect *that*
network, so each is registered here under ``tutorial_<name>``, built from the families' own blocks and
options (a stem, a unit order, a projection make-up, Keras's 'same' padding), with the tutorial's layer
order, paddings, biases, BatchNorm epsilon, input size, class count and exact parameter count. None of them
is the paper's network: each docstring line below says where it departs. They return logits (the
tutorials' final softmax belongs to the loss).

The tutorials:

- **000** "TF2.0 image classification in practice (6): ResNet": a TensorFlow 2 / Keras subclassed
  ``BasicBlock`` + ``ResNet([2, 2, 2, 2])``, 100 classes, 32x32 input;
- **002** "ResNet50V2 analysed and rebuilt" (deep-learning training camp J2): a PyTorch port of Keras's
  ResNet50V2 (``Block2``, ``Stack2``), trained with 4 classes;
- **004** "Classic deep networks wrapped in Keras" (blog.csdn.net/xiao_lxl/article/details/90902323):
  Keras ``LeNet``, ``AlexNet``, ``ZF_Net``, ``VGG_16``, a simplified ``GoogLeNet``, ``ResNet50`` and
  ``DenseNet121``.

Their saved weights load: a Keras ``.weights.h5`` / full-model ``.h5`` written by the tutorial's own code
(:mod:`reslab.weights.keras.tutorials`: layers matched by kind and creation order), and tutorial 002's
PyTorch ``state_dict`` (:mod:`reslab.weights.layouts.tutorial_torch`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .alexnet import AlexNet
from .base import ReslabModel, make_classifier
from .densenet import DenseNet
from .googlenet import Inception
from .layers import ConvBnAct, MaxPool2dSame
from .lenet import LeNet
from .registry import register_model
from .resnet import ResNet
from .vgg import VGG

TUTORIAL_000 = "tutorial 000 (TensorFlow 2 / Keras): TF2.0 image classification in practice (6), ResNet"
TUTORIAL_002 = "tutorial 002 (PyTorch): ResNet50V2 analysed and rebuilt, a port of keras.applications' ResNet50V2"
TUTORIAL_004 = "tutorial 004 (Keras): classic deep networks wrapped in Keras (blog.csdn.net/xiao_lxl/90902323)"
COUNTED = "the tutorial's code, transcribed in tests/references and built: trainable parameters"

#: tutorial 004's GoogLeNet: the width of every branch of each Inception module (``Inception(x, nb_filter)``)
TUTORIAL_INCEPTION_WIDTHS = {
    "3a": 64,
    "3b": 120,
    "4a": 128,
    "4b": 128,
    "4c": 128,
    "4d": 132,
    "4e": 208,
    "5a": 208,
    "5b": 256,
}


class TutorialGoogLeNet(ReslabModel):
    """Tutorial 004's "GoogLeNet", as its Keras code writes it; not the paper's network.

    Where it departs from Szegedy et al. (2014): every convolution is Conv -> ReLU -> BN with a bias (the
    tutorial's ``Conv2d_BN``); every branch of an Inception module has the same width ``nb_filter`` (the
    paper's Table 1 gives each its own); the "5x5" branch is a 1x1 convolution followed by another 1x1 (no
    5x5 at all); the stem has no 1x1 reduction before its 3x3 and no LRN; max-pools use Keras's 'same'
    padding (the odd pixel at the bottom / right); there are no auxiliary classifiers; after the 7x7 average
    pool and dropout 0.4 come ``Dense(1000, relu)`` and the classifier. 7,738,728 parameters at 1000 classes.

    Module names: ``conv1`` / ``conv2`` (``ConvBnAct``: ``conv``, ``act``, ``bn``), ``inception3a`` ...
    ``inception5b`` (:class:`~reslab.models.googlenet.Inception`), ``fc1`` (the hidden dense layer), ``fc``.

    Args:
        dropout: before the dense layers (the tutorial's 0.4).
        bn_eps: BatchNorm epsilon (Keras's default, 1e-3).
        num_classes: classifier outputs (0: none; ``model(x)`` gives fc1's 1000 features). in_chans: input
            channels.
    """

    fixed_input_size = 224  # the 7x7 average pool must leave 1x1 for the dense layers (Input(224, 224, 3))

    def __init__(self, *, dropout: float = 0.4, bn_eps: float = 1e-3, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.num_classes, self.in_chans = num_classes, in_chans
        opts = {"bn": True, "bn_eps": bn_eps, "order": "conv_act_bn", "bias": True}
        self.conv1 = ConvBnAct(in_chans, 64, 7, stride=2, padding="same", **opts)
        self.maxpool1 = MaxPool2dSame(3, 2)
        self.conv2 = ConvBnAct(64, 192, 3, padding="same", **opts)
        self.maxpool2 = MaxPool2dSame(3, 2)
        chs = 192
        self.feature_info = [
            {"num_chs": 64, "reduction": 2, "module": "conv1"},
            {"num_chs": 192, "reduction": 4, "module": "conv2"},
        ]
        for name, width in TUTORIAL_INCEPTION_WIDTHS.items():
            module = Inception(chs, width, width, width, width, width, width, five_kernel=1, **opts)
            setattr(self, f"inception{name}", module)
            chs = module.out_chs
            if name in ("3b", "4e"):
                setattr(self, f"maxpool{3 if name == '3b' else 4}", MaxPool2dSame(3, 2))
                reduction = 8 if name == "3b" else 16
                self.feature_info.append({"num_chs": chs, "reduction": reduction, "module": f"inception{name}"})
        self.feature_info.append({"num_chs": chs, "reduction": 32, "module": "inception5b"})
        self.avgpool = nn.AvgPool2d(7, stride=7)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(chs, 1000)
        self.num_features = 1000
        self.fc = make_classifier(1000, num_classes)
        self.min_input_size = self.fixed_input_size

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool2(self.conv2(self.maxpool1(self.conv1(x))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for name in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, f"inception{name}")(x)
        x = self.maxpool4(x)
        return self.inception5b(self.inception5a(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.relu(self.fc1(self.dropout(torch.flatten(self.avgpool(x), 1))))
        return x if pre_logits else self.fc(x)


def _register(
    name: str,
    cls: type[nn.Module],
    *,
    tutorial: str,
    input_size,
    num_classes: int,
    family: str,
    params: int,
    description: str,
    **spec,
) -> None:
    register_model(
        name,
        cls,
        family=family,
        input_size=input_size,
        num_classes=num_classes,
        paper=tutorial,
        params=params,
        params_source=COUNTED,
        description=description,
        **spec,
    )


_register(
    "tutorial_resnet18",
    ResNet,
    tutorial=TUTORIAL_000,
    family="cifar",
    input_size=(3, 32, 32),
    num_classes=100,
    params=11_223_140,
    description="Tutorial 000's ResNet-18 (Keras): 3x3 'valid' stem conv with bias + 2x2/1 max-pool (32 px "
    "-> 29), biased convs, BN-free 1x1 downsample, Keras 'same' padding, BN eps 1e-3, 100 classes",
    depth=18,
    stem="3x3_valid",
    conv_bias="all",
    projection="conv",
    same_padding=True,
    bn_eps=1e-3,
)
_register(
    "tutorial_lenet",
    LeNet,
    tutorial=TUTORIAL_004,
    family="mnist",
    input_size=(1, 28, 28),
    num_classes=10,
    params=155_606,
    description="Tutorial 004's LeNet (Keras): 32@5x5, max-pool, 64@5x5, max-pool, dense 100, dense 10, ReLU, "
    "28x28; not LeNet-5 (6 and 16 maps, C5, tanh, average pooling)",
    image_size=28,
    conv_channels=(32, 64),
    c5_channels=None,
    hidden_features=100,
    activation="relu",
    pooling="max",
    init="he",
)
_register(
    "tutorial_alexnet",
    AlexNet,
    tutorial=TUTORIAL_004,
    family="imagenet",
    input_size=(3, 227, 227),
    num_classes=1000,
    params=62_378_344,
    description="Tutorial 004's AlexNet (Keras): the 2012 layers on one device, 227 px, without the paper's "
    "local response normalisation",
    layout="paper",
    lrn=False,
)
_register(
    "tutorial_zfnet",
    AlexNet,
    tutorial=TUTORIAL_004,
    family="imagenet",
    input_size=(3, 224, 224),
    num_classes=1000,
    params=62_357_608,
    description="Tutorial 004's ZF-Net (Keras): 'valid' 7x7/2 conv1 (109 px), 'same' 5x5/2 conv2, no "
    "normalisation, floor-mode pools (the paper: conv1 padded, contrast normalisation; maps 110, 55, 26)",
    layout="zfnet_keras",
)
_register(
    "tutorial_vgg16",
    VGG,
    tutorial=TUTORIAL_004,
    family="imagenet",
    input_size=(3, 224, 224),
    num_classes=1000,
    params=138_332_968,
    description="Tutorial 004's VGG-16 (Keras): configuration D with the first conv of block 2 written as a "
    "(3, 2) kernel ('same' padding), 24,576 parameters fewer than VGG-16",
    config=[64, 64, "M", [128, [3, 2]], 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
)
_register(
    "tutorial_googlenet",
    TutorialGoogLeNet,
    tutorial=TUTORIAL_004,
    family="imagenet",
    input_size=(3, 224, 224),
    num_classes=1000,
    params=7_738_728,
    description="Tutorial 004's simplified GoogLeNet (Keras): Conv->ReLU->BN, equal-width branches, a 1x1 "
    "'5x5' branch, Dense(1000, relu) before the classifier, no auxiliary heads",
)
_register(
    "tutorial_resnet50",
    ResNet,
    tutorial=TUTORIAL_004,
    family="imagenet",
    input_size=(3, 227, 227),
    num_classes=1000,
    params=47_734_760,
    description="Tutorial 004's ResNet50 (Keras): Conv->ReLU->BN units with no ReLU after the addition, "
    "3x3 projection shortcuts, biased convs, 227 px, a 7x7 average pool of the 8x8 map",
    depth=50,
    stem="7x7_conv_relu_bn",
    unit="conv_relu_bn",
    conv_bias="all",
    stride_in="first_1x1",
    projection="conv_relu_bn",
    projection_kernel=3,
    same_padding=True,
    head_pool=7,
    bn_eps=1e-3,
)
_register(
    "tutorial_densenet121",
    DenseNet,
    tutorial=TUTORIAL_004,
    family="imagenet",
    input_size=(3, 224, 224),
    num_classes=1000,
    params=14_045_224,
    description="Tutorial 004's DenseNet121 (Keras, ported from Caffe): a Scale layer after every BN, eps "
    "1.1e-5, reduction 0.0 (transitions keep every map; DenseNet-BC halves them)",
    depth=121,
    compression=1.0,
    bn_eps=1.1e-5,
    bn_scale=True,
)
_register(
    "tutorial_resnet50v2",
    ResNet,
    tutorial=TUTORIAL_002,
    family="imagenet",
    input_size=(3, 224, 224),
    num_classes=4,
    params=23_508_612,
    description="Tutorial 002's ResNet50V2 port (PyTorch): Keras's layout with a bias on the stem conv only, "
    "PyTorch's -inf max-pool padding, BN eps 1e-5, 4 classes",
    depth=50,
    unit="full_preact",
    downsample_at="last",
    conv_bias="stem",
    maxpool_padding="-inf",
    bn_eps=1e-5,
)
