"""ONE parametrised ResNet: every ResNet v1, plain network and pre-activation ResNet in reslab.

Papers:
- He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016; arXiv 1512.03385):
  ImageNet networks (Table 1), CIFAR networks and shortcut options A/B/C (Sections 3.3 and 4.2),
  plain networks (Section 4.1).
- He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks" (ECCV 2016; arXiv 1603.05027):
  pre-activation units and the residual-unit variants of its Figure 4.

The arguments of :class:`ResNet` choose the block (basic / bottleneck), the unit order, the shortcut
option, the stem (ImageNet 7x7 + max-pool / CIFAR 3x3) and the stage spec; the registered names at
the bottom are a few lines of spec each. Module names follow torchvision's (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``) so torchvision checkpoints load strictly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .base import ReslabModel, make_classifier
from .layers import MaxPool2dSame, check_positive_ints, conv3x3, init_weights, spatial_output_size
from .registry import register_model
from .residual_units import PREACTIVATION_UNITS, UNIT_CLASSES, UNITS, PlainUnit, ResidualUnit
from .shortcut_variants import check_shortcut_variant, make_combine
from .shortcuts import PROJECTIONS, SHORTCUT_PADS, SHORTCUTS, make_shortcut

BLOCKS = ("basic", "bottleneck")
#: the stems (:func:`make_stem`): the papers' two, and the two tutorial ResNets' own
STEMS = ("imagenet", "cifar", "3x3_valid", "7x7_conv_relu_bn")
CONV_BIAS = ("none", "all", "unnormalised", "stem")
MAXPOOL_PADDINGS = ("zeros", "-inf")

#: ImageNet depths (Table 1 of the ResNet paper): block type and units per stage
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _resolve_stages(depth, layers, block, stem) -> tuple[str, tuple[int, ...]]:
    if block is not None and block not in BLOCKS:
        raise ConfigError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")
    if layers is not None:
        return block or "basic", check_positive_ints("layers", layers)
    if depth is None:
        raise ConfigError("give depth (e.g. depth=50) or layers (units per stage, e.g. layers=(3, 4, 6, 3))")
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ConfigError(f"depth must be a whole number, got {depth!r}")
    if stem != "cifar":  # the ImageNet depths, whatever the stem (the tutorials' ResNet-18 and ResNet-50)
        if depth not in IMAGENET_DEPTHS:
            raise ConfigError(
                f"depth must be one of {', '.join(map(str, IMAGENET_DEPTHS))} for an ImageNet-stem ResNet "
                f"(or pass layers=...), got {depth}"
            )
        default_block, stages = IMAGENET_DEPTHS[depth]
        if block is not None and block != default_block:
            raise ConfigError(f"depth={depth} is a {default_block}-block network; pass layers=... for block={block!r}")
        return default_block, stages
    # CIFAR (Section 4.2): 3 stages of n units; 2 layers per basic unit, 3 per bottleneck, plus stem + fc
    block = block or "basic"
    per_unit = 2 if block == "basic" else 3
    n, rest = divmod(depth - 2, 3 * per_unit)
    if rest or n < 1:
        form = "6n+2 (20, 32, 44, 56, 110, 1202, ...)" if block == "basic" else "9n+2 (164, 1001, ...)"
        raise ConfigError(f"depth of a {block}-block CIFAR ResNet must be {form}, got {depth}")
    return block, (n, n, n)


#: the spatial reduction of each stem
STEM_STRIDES = {"imagenet": 4, "cifar": 1, "3x3_valid": 1, "7x7_conv_relu_bn": 4}


def make_stem(
    stem: str,
    in_chans: int,
    width: int,
    *,
    unit: str,
    conv_bias: str,
    bn_eps: float,
    maxpool_padding: str | None = None,
) -> list[tuple[str, nn.Module]]:
    """The stem's modules in the order they run, named as torchvision's (``conv1``, ``bn1``, ``relu``,
    ``maxpool``):

    - ``"imagenet"``: 7x7/2 conv, BN, ReLU, 3x3/2 max-pool (the ResNet paper's Table 1);
    - ``"cifar"``: 3x3/1 conv, BN, ReLU (Section 4.2);
    - ``"3x3_valid"``: tutorial 000's ``stem``: a 3x3 'valid' conv (no padding: 32 px become 30), BN, ReLU
      and a 2x2 max-pool of stride 1 (29 px);
    - ``"7x7_conv_relu_bn"``: tutorial 004's ResNet50 stem: 7x7/2 conv on the 3-pixel zero-padded input,
      ReLU, then BN (the tutorial's Conv->ReLU->BN order), and a 3x3/2 max-pool with Keras's 'same' padding.

    A pre-activation network leaves the normalisation / activation to its first unit, which activates
    before splitting: the same as conv1-BN-ReLU feeding both paths (the paper's appendix). ``maxpool_padding``
    of the ImageNet stem: ``"zeros"`` (Keras's ZeroPadding2D) or ``"-inf"`` (PyTorch's MaxPool2d padding);
    default zeros for a full pre-activation stem, which pools raw convolution outputs (the Keras ResNetV2
    layout), and -inf otherwise (after a ReLU the two are the same).
    """
    bias = conv_bias != "none"  # the stem conv: Keras gives it a bias in every layout
    if stem == "3x3_valid":
        return [
            ("conv1", nn.Conv2d(in_chans, width, 3, bias=bias)),
            ("bn1", nn.BatchNorm2d(width, eps=bn_eps)),
            ("relu", nn.ReLU(inplace=True)),
            ("maxpool", nn.MaxPool2d(2, stride=1)),
        ]
    if stem == "7x7_conv_relu_bn":
        return [
            ("conv1", nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=bias)),
            ("relu", nn.ReLU(inplace=True)),
            ("bn1", nn.BatchNorm2d(width, eps=bn_eps)),
            ("maxpool", MaxPool2dSame(3, 2)),
        ]
    if stem == "imagenet":
        modules = [("conv1", nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=bias))]
    else:
        modules = [("conv1", conv3x3(in_chans, width, bias=bias))]
    if unit != "full_preact":
        modules.append(("bn1", nn.BatchNorm2d(width, eps=bn_eps)))
    if unit not in PREACTIVATION_UNITS:
        modules.append(("relu", nn.ReLU(inplace=True)))
    if stem == "imagenet":
        padding = maxpool_padding or ("zeros" if unit == "full_preact" else "-inf")
        pool = nn.Sequential(nn.ZeroPad2d(1), nn.MaxPool2d(3, 2)) if padding == "zeros" else nn.MaxPool2d(3, 2, 1)
        modules.append(("maxpool", pool))
    return modules


@dataclass(frozen=True)
class UnitSpec:
    """What every residual unit of one network shares (see :class:`ResNet`'s arguments)."""

    block: str
    unit: str
    shortcut: str
    shortcut_pad: str
    stride_in: str
    downsample_at: str
    conv_bias: str
    bn_eps: float
    shortcut_variant: str
    variant_args: dict[str, float]
    projection: str = "conv_bn"
    projection_kernel: int = 1
    same_padding: bool = False

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1


def make_stage(spec: UnitSpec, n_units: int, in_chs: int, width: int, stride: int) -> tuple[nn.Sequential, int]:
    """One stage: ``n_units`` residual units of branch width ``width``, the first (``downsample_at="first"``)
    or the last unit strided by ``stride``. Returns the stage and its output channels."""
    out_chs = width * spec.expansion
    strided = 0 if spec.downsample_at == "first" else n_units - 1
    unit_class = PlainUnit if spec.shortcut == "none" else UNIT_CLASSES[spec.unit]
    units = []
    for i in range(n_units):
        unit_stride = stride if i == strided else 1
        identity = unit_stride == 1 and in_chs == out_chs
        # Table 1's 1x1-convolution shortcut is a projection on every identity unit (option C there)
        option = "C" if identity and spec.shortcut_variant == "conv1x1" else spec.shortcut
        shortcut = make_shortcut(
            option,
            in_chs,
            out_chs,
            unit_stride,
            projection=spec.projection,
            kernel_size=spec.projection_kernel,
            bias=spec.conv_bias == "all" or (spec.conv_bias == "unnormalised" and spec.unit == "full_preact"),
            bn_eps=spec.bn_eps,
            subsample_by_pool=spec.downsample_at == "last",
            pad=spec.shortcut_pad,
            same=spec.same_padding,
        )
        combine = make_combine(spec.shortcut_variant if identity else "identity", out_chs, **spec.variant_args)
        units.append(
            unit_class(
                in_chs,
                width,
                out_chs,
                unit_stride,
                bottleneck=spec.block == "bottleneck",
                shortcut=shortcut,
                combine=combine,
                split_after_preactivation=i == 0,  # the stage's first unit: 'both_preact'
                stride_in=spec.stride_in,
                conv_bias=spec.conv_bias,
                bn_eps=spec.bn_eps,
                same_padding=spec.same_padding,
            )
        )
        in_chs = out_chs
    return nn.Sequential(*units), out_chs


def _min_input_size(stem: list[nn.Module], strides: list[int], last: int) -> int:
    """The smallest square input whose final map is at least ``last`` pixels (1; a head pool's kernel)."""
    for size in range(1, 4097):
        s = size
        for layer in stem:
            s = spatial_output_size(s, layer)
            if s < 1:
                break
        else:
            for stride in strides:
                s = -(-s // stride)  # strided 3x3 / 1x1 convolutions, either padding
            if s >= last:
                return size
    raise ConfigError(f"no input up to 4096 px reaches a {last}x{last} final map")  # pragma: no cover


class ResNet(ReslabModel):
    """Residual network (and its plain, shortcut-free twin), v1 or pre-activation, ImageNet or CIFAR.

    Args:
        depth: total weighted layers; selects the stage spec (ImageNet: 18/34/50/101/152; CIFAR: 6n+2
            for basic blocks, 9n+2 for bottlenecks). Ignored when ``layers`` is given.
        layers: units per stage, e.g. ``(3, 4, 6, 3)`` (overrides ``depth``).
        block: ``"basic"`` or ``"bottleneck"`` (default: from the depth; CIFAR: basic).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool), ``"cifar"`` (3x3/1 conv, Section 4.2), or the
            tutorials' ``"3x3_valid"`` / ``"7x7_conv_relu_bn"`` (:func:`make_stem`).
        widths: branch widths per stage (default 64-128-256-512, CIFAR 16-32-64); a bottleneck's
            output is 4x its width.
        stem_width: stem channels (default: ``widths[0]``).
        unit: residual-unit order, one of :data:`UNITS` ("Identity Mappings", Fig. 4).
        shortcut: ``"A"`` zero-padding, ``"B"`` projection where the shape changes, ``"C"``
            projection everywhere (ResNet paper, Section 3.3), ``"none"`` for the plain network.
        shortcut_pad: where option A's zero channels go: ``"append"`` (after the input's channels, as
            fb.resnet.torch) or ``"split"`` (half before, half after, as akamaster's
            pytorch_resnet_cifar10, whose weights need it). Only used with ``shortcut="A"``.
        stride_in: ``"3x3"`` (v1.5, torchvision's default) or ``"first_1x1"`` (the paper's v1, Keras
            ResNet50, the pre-activation authors' resnet-pre-act.lua) for where a strided bottleneck
            puts its stride.
        downsample_at: ``"first"`` unit of a stage is strided (the papers) or ``"last"`` (the
            keras.applications ResNetV2 layout, whose strided identity units subsample with a 1x1
            max-pool; stage strides 2-2-2-1 instead of 1-2-2-2).
        conv_bias: ``"none"`` (the papers), ``"all"`` (keras ResNet50, the tutorials' Keras code),
            ``"unnormalised"`` (keras ResNetV2: convolutions not followed by BN) or ``"stem"`` (the first
            convolution only: tutorial 002's ResNet50V2 port).
        maxpool_padding: the ImageNet stem's max-pool padding, ``"zeros"`` or ``"-inf"`` (default: zeros
            for full pre-activation, -inf otherwise; :func:`make_stem`).
        projection: a projection shortcut's make-up (:data:`~reslab.models.shortcuts.PROJECTIONS`):
            ``"conv_bn"`` (the papers), ``"conv"`` (no BN: pre-activation units, tutorial 000) or
            ``"conv_relu_bn"`` (tutorial 004); default conv for full pre-activation, else conv_bn.
        projection_kernel: its kernel (1 in the papers; tutorial 004 writes 3).
        same_padding: Keras's ``padding="same"`` on strided convolutions (TF puts the odd pixel of padding
            at the bottom / right; PyTorch's symmetric padding differs on even maps): the Keras tutorials.
        head_pool: None for the global average pool of the papers; N for an NxN/N 'valid' average pool before
            the classifier, as tutorial 004 writes ``AveragePooling2D((7, 7))`` (on its 8x8 map it averages
            the top-left 7x7).
        bn_eps: batch-norm epsilon (Keras uses 1.001e-5).
        zero_init_last: start each residual branch at zero (last BN gamma = 0).
        shortcut_variant: how the identity shortcuts join their branch, one of
            :data:`~reslab.models.shortcut_variants.SHORTCUT_VARIANTS` ("Identity Mappings", Fig. 2 /
            Table 1): ``"identity"`` (addition), ``"scaling"``, ``"exclusive_gating"``,
            ``"shortcut_gating"``, ``"conv1x1"``, ``"dropout"``. It applies to the units whose
            shortcut is the identity (shape-preserving); units that change shape keep ``shortcut``'s
            option. The paper measured them with the original unit (a); with another unit order the
            variant takes the place of that order's addition. Refused with ``shortcut="C"`` or
            ``"none"`` (no identity shortcut left).
        shortcut_scale, branch_scale: ``"scaling"``: ``shortcut_scale * x + branch_scale * F(x)``.
        gate_bias: the gating variants' initial gate bias b_g (the paper's best, -6).
        shortcut_dropout: ``"dropout"``: the rate of the dropout on the shortcut.
        num_classes: classifier outputs (0: no classifier). in_chans: input channels.

    Pre-activation networks (``unit="full_preact"`` / ``"relu_only_preact"``) follow the paper's
    appendix and its authors' ``resnet-pre-act.lua``: the first unit of every stage activates before
    splitting into branch and shortcut (so the network's first shortcut carries BN-ReLU of conv1,
    whose BN is that unit's ``bn1``), and the network ends in BN-ReLU (``post_bn``) before pooling.
    """

    def __init__(
        self,
        *,
        depth: int | None = None,
        layers: tuple[int, ...] | None = None,
        block: str | None = None,
        stem: str = "imagenet",
        widths: tuple[int, ...] | None = None,
        stem_width: int | None = None,
        unit: str = "original",
        shortcut: str = "B",
        shortcut_pad: str = "append",
        stride_in: str = "3x3",
        downsample_at: str = "first",
        conv_bias: str = "none",
        bn_eps: float = 1e-5,
        zero_init_last: bool = False,
        shortcut_variant: str = "identity",
        shortcut_scale: float = 0.5,
        branch_scale: float = 0.5,
        gate_bias: float = -6.0,
        shortcut_dropout: float = 0.5,
        maxpool_padding: str | None = None,
        projection: str | None = None,
        projection_kernel: int = 1,
        same_padding: bool = False,
        head_pool: int | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        for arg, value, allowed in (
            ("stem", stem, STEMS),
            ("unit", unit, UNITS),
            ("shortcut", shortcut, SHORTCUTS),
            ("shortcut_pad", shortcut_pad, SHORTCUT_PADS),
            ("stride_in", stride_in, ("3x3", "first_1x1")),
            ("downsample_at", downsample_at, ("first", "last")),
            ("conv_bias", conv_bias, CONV_BIAS),
            ("maxpool_padding", maxpool_padding, (None, *MAXPOOL_PADDINGS)),
            ("projection", projection, (None, *PROJECTIONS)),
        ):
            if value not in allowed:
                raise ConfigError(f"{arg} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        if shortcut == "none" and unit != "original":
            raise ConfigError(
                f"shortcut='none' builds the plain network (conv-BN-ReLU layers), which has no unit order; "
                f"leave unit='original', got unit={unit!r}"
            )
        variant_args = dict(
            shortcut_scale=shortcut_scale,
            branch_scale=branch_scale,
            gate_bias=gate_bias,
            shortcut_dropout=shortcut_dropout,
        )
        check_shortcut_variant(shortcut_variant, shortcut=shortcut, **variant_args)
        if maxpool_padding is not None and stem != "imagenet":
            raise ConfigError(f"maxpool_padding applies to stem='imagenet', not {stem!r}")
        (projection_kernel,) = check_positive_ints("projection_kernel", (projection_kernel,))
        if head_pool is not None:
            (head_pool,) = check_positive_ints("head_pool", (head_pool,))
        block, stages = _resolve_stages(depth, layers, block, stem)
        default_widths = (16, 32, 64) if stem == "cifar" else (64, 128, 256, 512)
        widths = check_positive_ints("widths", widths if widths is not None else default_widths[: len(stages)])
        if len(widths) != len(stages):
            raise ConfigError(f"widths needs one entry per stage ({len(stages)}), got {len(widths)}: {widths}")
        stem_width = check_positive_ints("stem_width", (stem_width or widths[0],))[0]
        expansion = 4 if block == "bottleneck" else 1
        if shortcut == "A" and any(w * expansion < prev for w, prev in zip(widths, (stem_width,) + widths)):
            raise ConfigError("shortcut='A' (zero padding) needs widths that never decrease")

        self.num_classes, self.in_chans = num_classes, in_chans
        self.unit, self.shortcut, self.block = unit, shortcut, block
        self.shortcut_variant = shortcut_variant
        preact = unit in PREACTIVATION_UNITS
        spec = UnitSpec(
            block=block,
            unit=unit,
            shortcut=shortcut,
            shortcut_pad=shortcut_pad,
            stride_in=stride_in,
            downsample_at=downsample_at,
            conv_bias=conv_bias,
            bn_eps=bn_eps,
            shortcut_variant=shortcut_variant,
            variant_args=variant_args,
            projection=projection or ("conv" if unit == "full_preact" else "conv_bn"),
            projection_kernel=projection_kernel,
            same_padding=bool(same_padding),
        )
        stem_modules = make_stem(
            stem, in_chans, stem_width, unit=unit, conv_bias=conv_bias, bn_eps=bn_eps, maxpool_padding=maxpool_padding
        )
        for name, module in stem_modules:
            setattr(self, name, module)
        self.stem_names = [name for name, _ in stem_modules]
        reduction = STEM_STRIDES[stem]

        strides = [1] + [2] * (len(stages) - 1)
        if downsample_at == "last":
            strides = strides[1:] + [1]
        in_chs = stem_width
        self.feature_info = []
        for s, (n_units, width, stride) in enumerate(zip(stages, widths, strides), start=1):
            stage, in_chs = make_stage(spec, n_units, in_chs, width, stride)
            reduction *= stride
            setattr(self, f"layer{s}", stage)
            self.feature_info.append({"num_chs": in_chs, "reduction": reduction, "module": f"layer{s}"})
        self.num_stages = len(stages)

        if unit == "full_preact":
            self.post_bn = nn.BatchNorm2d(in_chs, eps=bn_eps)  # Keras's post_bn: BN-ReLU before pooling
        self.avgpool = nn.AvgPool2d(head_pool) if head_pool else nn.AdaptiveAvgPool2d(1)
        self.num_features = in_chs
        self.fc = make_classifier(in_chs, num_classes)
        self.min_input_size = max(reduction, _min_input_size([m for _, m in stem_modules], strides, head_pool or 1))

        # Revision 2 (issue 9) changed pre-activation networks whose stage-first units have a
        # parameter-free shortcut (it now carries the activated input) or whose bottlenecks take their
        # stride on the first 1x1; the Keras v2 layout (projection first units, 3x3 stride) is as before.
        self._changed_in_revision_2 = preact and (
            (block == "bottleneck" and stride_in == "first_1x1")
            or any(not isinstance(stage[0].downsample, nn.Sequential) for stage in self.stages())
        )
        init_weights(self)
        for m in self.modules():
            if hasattr(m, "reset_gate"):  # init_weights zeroed the gates' biases
                m.reset_gate()
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, ResidualUnit):
                    m.zero_init_last()

    def revision_change(self, saved: int) -> str | None:
        if saved < 2 and self._changed_in_revision_2:
            return (
                "pre-activation units now activate before the first unit of a stage splits (the paper's appendix) "
                "and bottlenecks with stride_in='first_1x1' stride their first 1x1 (issue 9)"
            )
        return None

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i}") for i in range(1, self.num_stages + 1)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stem_names:
            x = getattr(self, name)(x)
        for stage in self.stages():
            x = stage(x)
        if self.unit == "full_preact":
            x = torch.relu(self.post_bn(x))
        elif self.unit == "relu_only_preact":
            x = torch.relu(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


# --------------------------------------------------------------------------------------------------
# Registered networks. Parameter counts are at the default class count; their sources are named.

RESNET_PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition (arXiv 1512.03385)"
PREACT_PAPER = "He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027)"
KERAS_RESNET = "keras.applications (ResNet, ResNetV2): trainable parameters"
IMAGENET = {"family": "imagenet", "input_size": (3, 224, 224), "num_classes": 1000}
CIFAR = {"family": "cifar", "input_size": (3, 32, 32), "num_classes": 10}

_TORCHVISION = {  # torchvision.models parameter counts
    18: 11_689_512,
    34: 21_797_672,
    50: 25_557_032,
    101: 44_549_160,
    152: 60_192_808,
}
for _d, _params in _TORCHVISION.items():
    register_model(
        f"resnet{_d}",
        ResNet,
        **IMAGENET,
        paper=RESNET_PAPER,
        params=_params,
        params_source="torchvision.models",
        description=f"ResNet-{_d}, ImageNet (v1.5: stride on the 3x3)",
        depth=_d,
    )

# keras.applications ResNet50/101/152: the paper's v1 (stride on the first 1x1), biased convs
for _d, _params in ((50, 25_583_592), (101, 44_601_832), (152, 60_268_520)):
    register_model(
        f"resnet{_d}_keras",
        ResNet,
        **IMAGENET,
        paper=RESNET_PAPER,
        params=_params,
        params_source=KERAS_RESNET,
        description=f"ResNet-{_d} in the keras.applications layout (v1, biased convs)",
        depth=_d,
        stride_in="first_1x1",
        conv_bias="all",
        bn_eps=1.001e-5,
    )

for _d, _params in ((50, 25_568_360), (101, 44_577_896), (152, 60_236_904)):
    register_model(
        f"resnet{_d}v2",
        ResNet,
        **IMAGENET,
        paper=PREACT_PAPER,
        params=_params,
        params_source=KERAS_RESNET,
        description=f"Pre-activation ResNet-{_d} in the keras.applications ResNet{_d}V2 layout",
        depth=_d,
        unit="full_preact",
        downsample_at="last",
        conv_bias="unnormalised",
        bn_eps=1.001e-5,
    )

# CIFAR networks, Section 4.2 / Table 6: option A shortcuts (as the paper)
_CIFAR_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962, 1202: 19_421_274}
_CIFAR_ERR = {20: "8.75", 32: "7.51", 44: "7.17", 56: "6.97", 110: "6.43", 1202: "7.93"}
for _d, _params in _CIFAR_PARAMS.items():
    register_model(
        f"resnet{_d}",
        ResNet,
        **CIFAR,
        paper=RESNET_PAPER,
        params=_params,
        params_source="ResNet paper Table 6 (0.27M ...); exact count: option A, 10 classes",
        accuracy=f"CIFAR-10 test error {_CIFAR_ERR[_d]}% (paper, Table 6)",
        description=f"ResNet-{_d}, CIFAR (3x3 stem, 16-32-64, shortcut A)",
        depth=_d,
        stem="cifar",
        shortcut="A",
    )

# Plain twins for the degradation experiment (Section 4.1, Figure 4 / Figure 6)
for _d in (18, 34):
    register_model(
        f"plain{_d}",
        ResNet,
        **IMAGENET,
        paper=RESNET_PAPER,
        description=f"Plain-{_d}: ResNet-{_d} without shortcuts",
        depth=_d,
        shortcut="none",
    )
for _d in (20, 32, 44, 56, 110):
    register_model(
        f"plain{_d}",
        ResNet,
        **CIFAR,
        paper=RESNET_PAPER,
        params=_CIFAR_PARAMS[_d],
        params_source="same as ResNet option A (parameter-free shortcuts)",
        description=f"Plain-{_d}: CIFAR ResNet-{_d} without shortcuts",
        depth=_d,
        stem="cifar",
        shortcut="none",
    )

# Pre-activation CIFAR networks, "Identity Mappings" Table 2 / 3
register_model(
    "preact_resnet110",
    ResNet,
    **CIFAR,
    paper=PREACT_PAPER,
    params=1_700_000,
    params_source="Identity Mappings Table 3 (1.7M)",
    accuracy="CIFAR-10 test error 6.37% (paper, Table 3)",
    description="Pre-activation ResNet-110 (basic units), CIFAR",
    depth=110,
    stem="cifar",
    shortcut="A",
    unit="full_preact",
)
register_model(
    "preact_resnet164",
    ResNet,
    **CIFAR,
    paper=PREACT_PAPER,
    params=1_700_000,
    params_source="Identity Mappings Table 3 (1.7M)",
    accuracy="CIFAR-10 test error 5.46% (paper, Table 3)",
    description="Pre-activation ResNet-164 (bottleneck units, stride on the first 1x1), CIFAR",
    depth=164,
    block="bottleneck",
    stem="cifar",
    shortcut="B",
    unit="full_preact",
    stride_in="first_1x1",
)
register_model(
    "preact_resnet1001",
    ResNet,
    **CIFAR,
    paper=PREACT_PAPER,
    params=10_200_000,
    params_source="Identity Mappings Table 3 (10.2M, conv + fc weights; 10.33M with BN)",
    accuracy="CIFAR-10 test error 4.92% (paper, Table 3)",
    description="Pre-activation ResNet-1001 (bottleneck units, stride on the first 1x1), CIFAR",
    depth=1001,
    block="bottleneck",
    stem="cifar",
    shortcut="B",
    unit="full_preact",
    stride_in="first_1x1",
)
