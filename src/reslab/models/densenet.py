"""DenseNet (Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR
2017; arXiv 1608.06993): ONE parametrised implementation of its three flavours and two layouts.

- DenseNet: each layer is BN-ReLU-Conv3x3 producing ``growth_rate`` (k) maps, concatenated to its
  input (Section 3, "Composite function"); transitions BN-ReLU-Conv1x1-AvgPool2x2 keep the width.
- DenseNet-B: each layer first reduces to ``bn_size * k`` maps with BN-ReLU-Conv1x1 ("Bottleneck
  layers", 4k in the paper).
- DenseNet-BC: bottleneck + transitions that compress to ``floor(compression * m)`` maps
  ("Compression", theta = 0.5).

Layouts: ``stem="imagenet"`` (7x7/2 conv + 3x3/2 max-pool, four blocks, Table 1; torchvision's
networks, whose module names these are: ``features.conv0``, ``features.denseblock1.denselayer1.norm1``,
``features.transition1.conv``, ``features.norm5``, ``classifier``) and ``stem="cifar"`` (one 3x3
convolution, three blocks of equal size, Section 4.1 "Implementation Details", Table 2).

``memory_efficient=True`` recomputes each layer's concatenation + BN-ReLU-Conv in the backward pass
(gradient checkpointing; Pleiss et al. 2017, "Memory-Efficient Implementation of DenseNets") instead
of storing the quadratically growing concatenations: same outputs, gradients and BN statistics,
less peak memory (``benchmarks/densenet_memory.py`` measures it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from ..errors import ConfigError
from .base import ReslabModel, make_classifier
from .layers import Scale, check_positive_ints, smallest_input_size
from .registry import register_model

#: ImageNet depths (Table 1): layers per dense block; depth = 2 * sum(blocks) + 5
IMAGENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32), 161: (6, 12, 36, 24)}
STEMS = ("imagenet", "cifar")


def _bn_batch_stats_only(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(x)`` without updating its running statistics (for a checkpoint's recomputation)."""
    if not bn.training or bn.running_mean is None:
        return bn(x)
    # copies of the statistics, updated and dropped: the same kernel (and saved tensors) as bn(x)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    momentum = 0.1 if bn.momentum is None else bn.momentum
    return F.batch_norm(x, mean, var, bn.weight, bn.bias, training=True, momentum=momentum, eps=bn.eps)


class DenseLayer(nn.Module):
    """One layer of a dense block: ``[BN-ReLU-Conv1x1(bn_size*k)] -> BN-ReLU-Conv3x3(k)`` on the
    concatenation of all earlier maps of the block; returns the k new maps.

    Keys: with a bottleneck ``norm1``/``conv1`` (1x1) and ``norm2``/``conv2`` (3x3), as torchvision;
    without one (plain DenseNet) ``norm1``/``conv1`` is the 3x3 convolution.
    """

    def __init__(
        self,
        in_chs: int,
        growth_rate: int,
        *,
        bottleneck: bool,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        bn_eps: float = 1e-5,
        bn_scale: bool = False,
    ):
        super().__init__()
        self.bottleneck = bottleneck
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient
        first_out = bn_size * growth_rate if bottleneck else growth_rate
        self.norm1 = nn.BatchNorm2d(in_chs, eps=bn_eps)
        self.scale1 = Scale(in_chs) if bn_scale else None
        self.relu1 = nn.ReLU(inplace=True)
        if bottleneck:
            self.conv1 = nn.Conv2d(in_chs, first_out, 1, bias=False)
            self.norm2 = nn.BatchNorm2d(first_out, eps=bn_eps)
            self.scale2 = Scale(first_out) if bn_scale else None
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(first_out, growth_rate, 3, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_chs, first_out, 3, padding=1, bias=False)

    def _first_unit(self, update_stats: list[bool], *features: torch.Tensor) -> torch.Tensor:
        # The concatenation + BN-ReLU-Conv that checkpointing recomputes. A recomputation must not
        # update BN's running statistics a second time: it normalises with the batch statistics only.
        x = torch.cat(features, 1)
        x = self.norm1(x) if update_stats[0] else _bn_batch_stats_only(self.norm1, x)
        update_stats[0] = False
        if self.scale1 is not None:
            x = self.scale1(x)
        return self.conv1(self.relu1(x))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and self.training and any(f.requires_grad for f in features):
            out = cp.checkpoint(self._first_unit, [True], *features, use_reentrant=False)
        else:
            out = self._first_unit([True], *features)
        if self.bottleneck:
            out = self.norm2(out)
            if self.scale2 is not None:
                out = self.scale2(out)
            out = self.conv2(self.relu2(out))
        if self.drop_rate > 0:  # Section 4.2: dropout after each convolution (here: the layer's output)
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers (``denselayer1`` ...), each fed every earlier map; returns the
    concatenation of the input and all new maps."""

    def __init__(self, num_layers: int, in_chs: int, growth_rate: int, **layer_opts: Any):
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_chs + i * growth_rate, growth_rate, **layer_opts)
        self.out_chs = in_chs + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1-AvgPool2x2 between blocks (keys ``norm``, ``conv``), compressing to ``out_chs``."""

    def __init__(self, in_chs: int, out_chs: int, bn_eps: float = 1e-5, bn_scale: bool = False):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_chs, eps=bn_eps)
        if bn_scale:
            self.scale = Scale(in_chs)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


def _resolve_blocks(depth: Any, block_config: Any, stem: str, bottleneck: bool) -> tuple[int, ...]:
    if block_config is not None:
        return check_positive_ints("block_config", block_config)
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ConfigError(f"depth must be a whole number (or pass block_config=...), got {depth!r}")
    if stem == "imagenet":
        if depth not in IMAGENET_BLOCKS:
            raise ConfigError(
                f"depth of an ImageNet DenseNet must be one of {', '.join(map(str, IMAGENET_BLOCKS))} "
                f"(or pass block_config=...), got {depth}"
            )
        return IMAGENET_BLOCKS[depth]
    # CIFAR: 3 blocks of n layers (2 convolutions each with a bottleneck), the first conv, 2 transitions, fc
    per_layer = 2 if bottleneck else 1
    n, rest = divmod(depth - 4, 3 * per_layer)
    if rest or n < 1:
        form = "6n+4 (e.g. 100, 190, 250)" if bottleneck else "3n+4 (e.g. 40, 100)"
        kind = "DenseNet-B/BC (bottleneck=True)" if bottleneck else "DenseNet (bottleneck=False)"
        raise ConfigError(f"depth of a CIFAR {kind} must be {form}, got {depth}")
    return (n, n, n)


class DenseNet(ReslabModel):
    """DenseNet, DenseNet-B and DenseNet-BC, for ImageNet (Table 1) or CIFAR (Table 2).

    Args:
        depth: ImageNet: 121 / 169 / 201 / 161; CIFAR: 3n+4 (plain) or 6n+4 (bottleneck). Ignored
            when ``block_config`` is given.
        block_config: layers per dense block, e.g. ``(6, 12, 24, 16)``.
        growth_rate: k, the maps each layer adds (32 for ImageNet, 48 for DenseNet-161, 12 CIFAR).
        bottleneck: the B in BC: a 1x1 convolution to ``bn_size * k`` maps before each 3x3.
        bn_size: the bottleneck's width in multiples of k (4 in the paper).
        compression: theta in (0, 1]: transitions output ``floor(theta * m)`` maps (0.5 for -BC,
            1 for plain DenseNet and DenseNet-B).
        stem: ``"imagenet"`` (7x7/2 conv, BN-ReLU, 3x3/2 max-pool) or ``"cifar"`` (3x3 conv only).
        stem_width: first convolution's maps (default: 2k for ImageNet and for CIFAR DenseNet-BC, 16
            for CIFAR DenseNet / DenseNet-B, as in the paper).
        drop_rate: dropout after each layer's new maps (the paper: 0.2 without data augmentation).
        memory_efficient: checkpoint each layer's concatenation + first BN-ReLU-Conv (see module doc).
        bn_eps: BN epsilon (Keras's DenseNet uses 1.001e-5; torchvision 1e-5).
        bn_scale: a :class:`~reslab.models.layers.Scale` (per-channel ``gamma * x + beta``) after every BN, as
            the Caffe-converted Keras DenseNet of tutorial 004 has (keys ``scale0``, ``...scale1``, ...).
        num_classes: classifier outputs (0: no classifier, pooled features out). in_chans: input channels.

    Raises:
        ConfigError: a depth / growth_rate / block_config / compression / rate the networks cannot take,
            naming the argument.
    """

    def __init__(
        self,
        *,
        depth: int | None = 121,
        block_config: tuple[int, ...] | None = None,
        growth_rate: int = 32,
        bottleneck: bool = True,
        bn_size: int = 4,
        compression: float = 0.5,
        stem: str = "imagenet",
        stem_width: int | None = None,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        bn_eps: float = 1e-5,
        bn_scale: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
        (growth_rate,) = check_positive_ints("growth_rate", (growth_rate,))
        (bn_size,) = check_positive_ints("bn_size", (bn_size,))
        if isinstance(compression, bool) or not isinstance(compression, int | float) or not 0 < compression <= 1:
            raise ConfigError(f"compression (theta) must be in (0, 1], got {compression!r}")
        if not 0.0 <= drop_rate < 1.0:
            raise ConfigError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
        blocks = _resolve_blocks(depth, block_config, stem, bottleneck)
        if stem_width is None:
            stem_width = 2 * growth_rate if (stem == "imagenet" or bottleneck) else 16
        (stem_width,) = check_positive_ints("stem_width", (stem_width,))
        self.num_classes, self.in_chans = num_classes, in_chans
        self.growth_rate, self.block_config = growth_rate, blocks

        feats: dict[str, nn.Module] = {}
        if stem == "imagenet":
            feats["conv0"] = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
            feats["norm0"] = nn.BatchNorm2d(stem_width, eps=bn_eps)
            if bn_scale:
                feats["scale0"] = Scale(stem_width)
            feats["relu0"] = nn.ReLU(inplace=True)
            # Keras pads with zeros before this pool; after the ReLU that equals PyTorch's -inf padding
            feats["pool0"] = nn.MaxPool2d(3, stride=2, padding=1)
            reduction = 4
        else:
            feats["conv0"] = nn.Conv2d(in_chans, stem_width, 3, padding=1, bias=False)
            reduction = 1
        layer_opts = {
            "bottleneck": bottleneck,
            "bn_size": bn_size,
            "drop_rate": drop_rate,
            "memory_efficient": memory_efficient,
            "bn_eps": bn_eps,
            "bn_scale": bool(bn_scale),
        }
        chs = stem_width
        self.feature_info = []
        for i, n_layers in enumerate(blocks, start=1):
            block = DenseBlock(n_layers, chs, growth_rate, **layer_opts)
            feats[f"denseblock{i}"] = block
            chs = block.out_chs
            self.feature_info.append({"num_chs": chs, "reduction": reduction, "module": f"features.denseblock{i}"})
            if i < len(blocks):
                out = int(compression * chs)  # floor(theta * m), Section 3 "Compression"
                if out < 1:
                    raise ConfigError(f"compression={compression} leaves no maps after dense block {i} ({chs} maps)")
                feats[f"transition{i}"] = Transition(chs, out, bn_eps=bn_eps, bn_scale=bool(bn_scale))
                chs, reduction = out, reduction * 2
        feats["norm5"] = nn.BatchNorm2d(chs, eps=bn_eps)
        if bn_scale:
            feats["scale5"] = Scale(chs)
        self.features = nn.Sequential()
        for name, module in feats.items():
            self.features.add_module(name, module)

        self.num_features = chs
        self.classifier = make_classifier(chs, num_classes)
        sizing = [m for m in self.features.modules() if isinstance(m, nn.MaxPool2d | nn.AvgPool2d)]
        self.min_input_size = smallest_input_size([self.features.conv0, *sizing])

        # torchvision's init: He-normal convolutions, BN 1/0, zero linear bias (weights: PyTorch's default)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def _set_classifier(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
        self.classifier = module

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Switch the memory-efficient (checkpointed) layers on or off (timm's name for it)."""
        for m in self.modules():
            if isinstance(m, DenseLayer):
                m.memory_efficient = bool(enable)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(F.relu(x), 1), 1)
        return x if pre_logits else self.classifier(x)


# torchvision's pre-0.3 DenseNet checkpoints name a dense layer's modules "norm.1", "conv.2", ... (dots
# are no longer allowed in module names); this is the pattern torchvision's own loader documents.
_OLD_DENSELAYER_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def remap_old_densenet_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename torchvision's old DenseNet checkpoint keys (``denselayer1.norm.1.weight``) to the current
    ones (``denselayer1.norm1.weight``) so old checkpoints load with ``strict=True``.

    Args:
        state_dict: a state dict, old-style or already current (current keys pass unchanged).

    Returns:
        A new dict with the same tensors, in the same order. (Old checkpoints also lack BN's
        ``num_batches_tracked``; ``load_state_dict`` fills it in for state dicts without version
        metadata, as old checkpoints are.)
    """
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        m = _OLD_DENSELAYER_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


# --------------------------------------------------------------------------------------------------

DENSENET_PAPER = "Huang et al. 2017, Densely Connected Convolutional Networks (arXiv 1608.06993)"
_TORCHVISION = {  # name: (depth, growth rate, parameters)
    "densenet121": (121, 32, 7_978_856),
    "densenet169": (169, 32, 14_149_480),
    "densenet201": (201, 32, 20_013_928),
    "densenet161": (161, 48, 28_681_000),
}
for _name, (_depth, _k, _params) in _TORCHVISION.items():
    register_model(
        _name,
        DenseNet,
        family="imagenet",
        input_size=(3, 224, 224),
        num_classes=1000,
        paper=DENSENET_PAPER,
        params=_params,
        params_source="torchvision.models",
        description=f"DenseNet-BC-{_depth} (k={_k}), ImageNet (Table 1)",
        depth=_depth,
        growth_rate=_k,
    )

register_model(
    "densenet40",
    DenseNet,
    family="cifar",
    input_size=(3, 32, 32),
    num_classes=10,
    paper=DENSENET_PAPER,
    params=1_000_000,
    params_source="paper Table 2 (1.0M, rounded to 0.1M)",
    accuracy="CIFAR-10+ test error 5.24% (paper, Table 2; 7.00% without augmentation)",
    description="DenseNet (L=40, k=12), CIFAR: no bottleneck, no compression",
    depth=40,
    growth_rate=12,
    bottleneck=False,
    compression=1.0,
    stem="cifar",
)
register_model(
    "densenet_bc100",
    DenseNet,
    family="cifar",
    input_size=(3, 32, 32),
    num_classes=10,
    paper=DENSENET_PAPER,
    params=800_000,
    params_source="paper Table 2 (0.8M, rounded to 0.1M)",
    accuracy="CIFAR-10+ test error 4.51% (paper, Table 2; 5.92% without augmentation)",
    description="DenseNet-BC (L=100, k=12), CIFAR: bottleneck 4k, compression 0.5",
    depth=100,
    growth_rate=12,
    bottleneck=True,
    compression=0.5,
    stem="cifar",
)
