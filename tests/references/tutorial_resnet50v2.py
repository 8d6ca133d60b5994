"""Tutorial 002's PyTorch ResNet50V2 (``002_ca9c2b42c4c84d62.txt``), transcribed as written (a test reference).

Same classes, module names and order as the tutorial (``Block2``, ``Stack2``, ``ResNet50V2``), so a ``state_dict``
has the tutorial's keys (``conv2.conv.0.preact.0.weight``, ``conv2.conv.0.short.weight``, ``post.fc.weight``, ...).
Kept as written: the stem conv with bias (``use_bias=True``) and no BatchNorm (``preact=True``), PyTorch max-pool
padding (``MaxPool2d(3, 2, padding=1)``), the stride on the *last* block of each stack (a 1x1 max-pool shortcut
there), stage strides 2-2-2-1, BatchNorm eps 1e-5 (PyTorch's default) and in-place ReLUs. The tutorial trains it
with ``classes=4`` (its printed model ends in ``Linear(in_features=2048, out_features=4)``): :func:`resnet50v2_002`.
Nothing was modernised.
"""

from __future__ import annotations

import torch.nn as nn

""" Residual Block """


class Block2(nn.Module):
    def __init__(self, in_channel, filters, kernel_size=3, stride=1, conv_shortcut=False):
        super().__init__()
        self.preact = nn.Sequential(nn.BatchNorm2d(in_channel), nn.ReLU(True))

        self.shortcut = conv_shortcut
        if self.shortcut:
            self.short = nn.Conv2d(in_channel, 4 * filters, 1, stride=stride, padding=0, bias=False)
        elif stride > 1:
            self.short = nn.MaxPool2d(kernel_size=1, stride=stride, padding=0)
        else:
            self.short = nn.Identity()

        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channel, filters, 1, stride=1, bias=False), nn.BatchNorm2d(filters), nn.ReLU(True)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(filters, filters, kernel_size, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(filters),
            nn.ReLU(True),
        )
        self.conv3 = nn.Conv2d(filters, 4 * filters, 1, stride=1, bias=False)

    def forward(self, x):
        x1 = self.preact(x)
        if self.shortcut:
            x2 = self.short(x1)
        else:
            x2 = self.short(x)
        x1 = self.conv1(x1)
        x1 = self.conv2(x1)
        x1 = self.conv3(x1)
        x = x1 + x2
        return x


class Stack2(nn.Module):
    def __init__(self, in_channel, filters, blocks, stride=2):
        super().__init__()
        self.conv = nn.Sequential()
        self.conv.add_module(str(0), Block2(in_channel, filters, conv_shortcut=True))
        for i in range(1, blocks - 1):
            self.conv.add_module(str(i), Block2(4 * filters, filters))
        self.conv.add_module(str(blocks - 1), Block2(4 * filters, filters, stride=stride))

    def forward(self, x):
        x = self.conv(x)
        return x


""" 构建ResNet50V2 """


class ResNet50V2(nn.Module):
    def __init__(
        self,
        include_top=True,  # 是否包含位于网络顶部的全链接层
        preact=True,  # 是否使用预激活
        use_bias=True,  # 是否对卷积层使用偏置
        input_shape=[224, 224, 3],  # noqa: B006 (as written; unused)
        classes=1000,
        pooling=None,
    ):  # 用于分类图像的可选类数
        super().__init__()

        self.conv1 = nn.Sequential()
        self.conv1.add_module("conv", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=use_bias, padding_mode="zeros"))
        if not preact:
            self.conv1.add_module("bn", nn.BatchNorm2d(64))
            self.conv1.add_module("relu", nn.ReLU())
        self.conv1.add_module("max_pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        self.conv2 = Stack2(64, 64, 3)
        self.conv3 = Stack2(256, 128, 4)
        self.conv4 = Stack2(512, 256, 6)
        self.conv5 = Stack2(1024, 512, 3, stride=1)

        self.post = nn.Sequential()
        if preact:
            self.post.add_module("bn", nn.BatchNorm2d(2048))
            self.post.add_module("relu", nn.ReLU())
        if include_top:
            self.post.add_module("avg_pool", nn.AdaptiveAvgPool2d((1, 1)))
            self.post.add_module("flatten", nn.Flatten())
            self.post.add_module("fc", nn.Linear(2048, classes))
        else:
            if pooling == "avg":
                self.post.add_module("avg_pool", nn.AdaptiveAvgPool2d((1, 1)))
            elif pooling == "max":
                self.post.add_module("max_pool", nn.AdaptiveMaxPool2d((1, 1)))

    def forward(self, x):
        x = self.conv1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.conv4(x)
        x = self.conv5(x)
        x = self.post(x)
        return x


def resnet50v2_002(classes: int = 4) -> ResNet50V2:
    """The tutorial's model as it trains it: ``ResNet50V2(classes=4)`` (returns logits: no softmax in the code)."""
    return ResNet50V2(classes=classes)
