"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015; arXiv
1409.4842), in two layouts of one implementation.

- ``layout="torchvision"`` (registered as ``googlenet``): torchvision's network, module for module
  (so its checkpoints load strictly): batch norm (eps 0.001) after every convolution, a 3x3
  convolution in the branch the paper calls "5x5" (torchvision issue #906), no response
  normalisation, a 2x2/2 max-pool between 4e and 5a, adaptive pooling (any input >= 15x15),
  dropout 0.2, auxiliary heads that pool adaptively to 4x4.
- ``layout="paper"`` (``googlenet_paper``): the paper as written: no batch norm (biased
  convolutions), a true 5x5 branch (Section 5, Table 1), local response normalisation in the stem
  (Figure 3), 3x3/2 max-pools between stages (Table 1), a 7x7/1 average pool, dropout 0.4 before the
  classifier (Table 1), auxiliary heads of Section 5 (5x5/3 average pool, 1x1 convolution with 128
  filters, dense 1024, dropout 0.7). Its dense layers fix the input at 224x224.

Both use the channel configuration of the paper's Table 1 for all nine Inception modules
(:data:`INCEPTION_TABLE`) and attach the two auxiliary classifiers after 4a and 4d. In training mode
``model(x)`` returns :class:`reslab.models.base.AuxLogits` ``(logits, aux1, aux2)`` (note: torchvision
returns ``(logits, aux2, aux1)``); in eval mode the main logits alone. The paper weights the
auxiliary losses by 0.3.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import AuxLogits, ReslabModel, make_classifier
from .layers import ConvBnAct, init_weights, local_response_norm, smallest_input_size
from .registry import register_model

# torchvision's ImageNet statistics, which ``transform_input`` undoes (kept here: models import no weights code)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Table 1 of the paper: module -> (input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}
LAYOUTS = ("torchvision", "paper")


class Inception(nn.Module):
    """One Inception module (Figure 2b): 1x1 | 1x1 -> 3x3 | 1x1 -> "5x5" | 3x3/1 max-pool -> 1x1,
    concatenated along channels. Keys: ``branch1``, ``branch2.{0,1}``, ``branch3.{0,1}``, ``branch4.1``.

    ``five_kernel``: 5 (the paper), 3 (torchvision) or 1 (tutorial 004's 1x1 -> 1x1 "5x5" branch). ``bn``: BN
    after each convolution (else biased convolutions). ``order`` and ``bias``: the convolutions' make-up
    (:class:`~reslab.models.layers.ConvBnAct`; tutorial 004: conv-ReLU-BN with biased convolutions).
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
        *,
        five_kernel: int = 5,
        bn: bool = True,
        bn_eps: float = 1e-3,
        order: str = "conv_bn_act",
        bias: bool | None = None,
    ):
        super().__init__()
        opts = {"bn": bn, "bn_eps": bn_eps, "order": order, "bias": bias}
        self.branch1 = ConvBnAct(in_chs, ch1x1, 1, **opts)
        self.branch2 = nn.Sequential(
            ConvBnAct(in_chs, ch3x3_reduce, 1, **opts), ConvBnAct(ch3x3_reduce, ch3x3, 3, **opts)
        )
        self.branch3 = nn.Sequential(
            ConvBnAct(in_chs, ch5x5_reduce, 1, **opts), ConvBnAct(ch5x5_reduce, ch5x5, five_kernel, **opts)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBnAct(in_chs, pool_proj, 1, **opts)
        )
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """An auxiliary classifier (Section 5): average pool to 4x4, 1x1 convolution to 128 channels + ReLU,
    dense 1024 + ReLU, dropout, dense to the classes. Keys ``conv.conv`` (``conv.bn``), ``fc1``, ``fc2``.

    ``paper_pool``: the paper's 5x5/3 average pool (4x4 from a 14x14 map only) instead of
    torchvision's adaptive 4x4 pool (any map size).
    """

    def __init__(
        self,
        in_chs: int,
        num_classes: int,
        *,
        paper_pool: bool,
        bn: bool,
        bn_eps: float,
        dropout: float = 0.7,
    ):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3) if paper_pool else nn.AdaptiveAvgPool2d((4, 4))
        self.conv = ConvBnAct(in_chs, 128, 1, bn=bn, bn_eps=bn_eps)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = make_classifier(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(ReslabModel):
    """GoogLeNet (Inception v1), torchvision's layout or the paper's (see the module docstring).

    Args:
        layout: ``"torchvision"`` or ``"paper"``.
        aux_logits: build the two auxiliary classifiers (after 4a and 4d); they run in training mode
            only, where ``model(x)`` returns ``AuxLogits(logits, aux1, aux2)``.
        dropout: before the classifier (default: 0.2 torchvision, 0.4 the paper's Table 1).
        aux_dropout: in the auxiliary heads (0.7, Section 5).
        bn_eps: batch-norm epsilon of the torchvision layout (0.001, as torchvision).
        transform_input: re-normalise an ImageNet-normalised input (``(x - mean) / std`` with
            torchvision's mean / std) to the ``(x - 0.5) / 0.5`` scale torchvision's published GoogLeNet
            weights (ported from Google's) were trained on: channel c becomes
            ``x_c * std_c / 0.5 + (mean_c - 0.5) / 0.5`` (torchvision's ``_transform_input``). The
            ``googlenet.tv_in1k`` weights set it; default False. With ``in_chans != 3`` the channel
            averages of mean / std are used (as the adapted preprocessing does).
        num_classes: classifier outputs (0: no classifier, pooled 1024 features out).
        in_chans: input channels.

    Init: torchvision layout as torchvision (truncated normal, std 0.01, within 2 std; BN 1/0); paper
    layout, which has no BN and for which the paper gives no scheme: He-normal convolutions,
    N(0, 0.01) dense layers, zero biases.

    Raises:
        ConfigError: an unknown layout or a dropout rate outside [0, 1).
    """

    def __init__(
        self,
        *,
        layout: str = "torchvision",
        aux_logits: bool = True,
        dropout: float | None = None,
        aux_dropout: float = 0.7,
        bn_eps: float = 1e-3,
        transform_input: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        self.transform_input = bool(transform_input)
        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        paper = layout == "paper"
        dropout = (0.4 if paper else 0.2) if dropout is None else dropout
        for name, rate in (("dropout", dropout), ("aux_dropout", aux_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {rate!r}")
        self.layout, self.aux_logits = layout, bool(aux_logits)
        self.num_classes, self.in_chans = num_classes, in_chans
        opts = {"bn": not paper, "bn_eps": bn_eps}

        self.conv1 = ConvBnAct(in_chans, 64, 7, stride=2, padding=3, **opts)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        if paper:  # Figure 3; constants from the BVLC Caffe reference model (the paper gives none)
            self.lrn1 = local_response_norm(5, alpha=1e-4, beta=0.75, k=1.0, alpha_applies_to="mean")
        self.conv2 = ConvBnAct(64, 64, 1, **opts)
        self.conv3 = ConvBnAct(64, 192, 3, padding=1, **opts)
        if paper:
            self.lrn2 = local_response_norm(5, alpha=1e-4, beta=0.75, k=1.0, alpha_applies_to="mean")
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        five = 5 if paper else 3
        for name, row in INCEPTION_TABLE.items():
            setattr(self, f"inception{name}", Inception(*row, five_kernel=five, **opts))
            if name == "3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "4e":
                self.maxpool4 = nn.MaxPool2d(3 if paper else 2, stride=2, ceil_mode=True)

        if self.aux_logits:
            aux = {"paper_pool": paper, "dropout": aux_dropout, **opts}
            self.aux1 = InceptionAux(INCEPTION_TABLE["4b"][0], num_classes, **aux)  # the output of 4a
            self.aux2 = InceptionAux(INCEPTION_TABLE["4e"][0], num_classes, **aux)  # the output of 4d

        sizing = [self.conv1, self.maxpool1, self.conv3, self.maxpool2, self.maxpool3, self.maxpool4]
        if paper:
            self.avgpool = nn.AvgPool2d(7, stride=1)
            self.fixed_input_size = self.min_input_size = 224  # the aux heads' dense layers take 4x4x128
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.min_input_size = smallest_input_size(sizing)
        self.dropout = nn.Dropout(dropout)
        self.num_features = self.inception5b.out_chs
        self.fc = make_classifier(self.num_features, num_classes)
        self.feature_info = [
            {"num_chs": 64, "reduction": 2, "module": "conv1"},
            {"num_chs": 192, "reduction": 4, "module": "conv3"},
            {"num_chs": self.inception3b.out_chs, "reduction": 8, "module": "inception3b"},
            {"num_chs": self.inception4e.out_chs, "reduction": 16, "module": "inception4e"},
            {"num_chs": self.inception5b.out_chs, "reduction": 32, "module": "inception5b"},
        ]
        if paper:
            init_weights(self, linear="normal")
        else:
            self._init_torchvision()

    def _init_torchvision(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-0.02, b=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the main classifier and (when built) the auxiliary heads' last layers."""
        super().reset_classifier(num_classes)
        if self.aux_logits:
            for aux in (self.aux1, self.aux2):
                aux.fc2 = make_classifier(1024, num_classes).to(aux.fc1.weight.device, aux.fc1.weight.dtype)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.transform_input:
            return x
        if x.shape[1] == len(IMAGENET_MEAN):
            mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        else:  # an adapted input convolution: the channel averages (see the class docstring)
            mean, std = sum(IMAGENET_MEAN) / 3, sum(IMAGENET_STD) / 3
        # undo (x - mean) / std, then apply (x - 0.5) / 0.5
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def _features(self, x: torch.Tensor, with_aux: bool):
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        if self.layout == "paper":
            x = self.lrn1(x)
        x = self.conv3(self.conv2(x))
        if self.layout == "paper":
            x = self.lrn2(x)
        x = self.maxpool2(x)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        return x, aux1, aux2

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor):
        self.check_input(x)
        with_aux = self.training and self.aux_logits
        x, aux1, aux2 = self._features(x, with_aux)
        logits = self.forward_head(x)
        return AuxLogits(logits, aux1, aux2) if with_aux else logits


GOOGLENET_PAPER = "Szegedy et al. 2014, Going Deeper with Convolutions (arXiv 1409.4842)"
register_model(
    "googlenet",
    GoogLeNet,
    family="imagenet",
    input_size=(3, 224, 224),
    num_classes=1000,
    paper=GOOGLENET_PAPER,
    params=6_624_904,
    params_source="torchvision.models (without the auxiliary heads)",
    description="GoogLeNet, torchvision's layout (BN, 3x3 in the '5x5' branch), auxiliary heads in training",
)
register_model(
    "googlenet_paper",
    GoogLeNet,
    family="imagenet",
    input_size=(3, 224, 224),
    num_classes=1000,
    paper=GOOGLENET_PAPER,
    accuracy="ILSVRC-2014 top-5 error 10.07% (paper, Table 3: one model, one crop)",
    description="GoogLeNet as in the paper: no BN, true 5x5 branch, LRN in the stem, dropout 0.4, "
    "auxiliary heads of Section 5; 224x224 input",
    layout="paper",
)
