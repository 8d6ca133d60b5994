"""keras.applications ResNet50/101/152 (v1) and ResNet50V2/101V2/152V2 -> reslab ResNet.

Keras layer names say where a layer is: ``conv{stage+1}_block{unit}_{k}_conv`` for the k-th
convolution of a unit, ``_0_conv`` / ``_0_bn`` for the projection shortcut, ``_preact_bn`` for a v2
unit's pre-activation BN, ``conv1_conv`` / ``conv1_bn`` for the stem, ``post_bn`` and
``predictions`` at the end. reslab's matching models: ``resnet50_keras`` (or ``resnet50`` built with
``stride_in="first_1x1", conv_bias="all", bn_eps=1.001e-5``) and ``resnet50v2``.
"""

from __future__ import annotations

from torch import nn

from ...errors import ConfigError
from ...models.resnet import ResNet
from .common import KerasLayers, copy_bn, copy_conv, copy_dense, register_converter


@register_converter(ResNet)
def convert_resnet(model: ResNet, layers: KerasLayers) -> None:
    if model.unit not in ("original", "full_preact") or model.block != "bottleneck" or not hasattr(model, "maxpool"):
        raise ConfigError(
            "Keras weights fit only the keras.applications layouts: resnet50_keras/101/152 (v1) and "
            f"resnet50v2/101v2/152v2; got a {model.block}-block model with unit={model.unit!r}"
        )
    preact = model.unit == "full_preact"
    copy_conv(model.conv1, layers, "conv1_conv")
    if not preact:
        copy_bn(model.bn1, layers, "conv1_bn")
    for s, stage in enumerate(model.stages(), start=2):
        for i, unit in enumerate(stage, start=1):
            prefix = f"conv{s}_block{i}"
            for k, (conv, bn) in enumerate(unit._layers(), start=1):
                copy_conv(conv, layers, f"{prefix}_{k}_conv")
                if preact:
                    copy_bn(bn, layers, f"{prefix}_preact_bn" if k == 1 else f"{prefix}_{k - 1}_bn")
                else:
                    copy_bn(bn, layers, f"{prefix}_{k}_bn")
            if isinstance(unit.downsample, nn.Sequential):
                copy_conv(unit.downsample[0], layers, f"{prefix}_0_conv")
                if len(unit.downsample) > 1:
                    copy_bn(unit.downsample[1], layers, f"{prefix}_0_bn")
    if preact:
        copy_bn(model.post_bn, layers, "post_bn")
    if isinstance(model.fc, nn.Linear):
        copy_dense(model.fc, layers, "predictions")
    unused = layers.unused_weighted_layers()
    if unused:
        raise ConfigError(f"Keras layers with weights that have no place in this model: {', '.join(unused[:5])}")
