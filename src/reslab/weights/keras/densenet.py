"""Keras ``keras.applications.DenseNet121`` / ``169`` / ``201`` -> reslab ``densenet121`` / ``169`` / ``201``.

Keras layer names: ``conv1_conv``/``conv1_bn`` (stem), ``conv{b+1}_block{j}_0_bn`` / ``_1_conv`` /
``_1_bn`` / ``_2_conv`` (dense layer j of block b: norm1, conv1, norm2, conv2), ``pool{b+1}_bn`` /
``pool{b+1}_conv`` (transition b), ``bn`` (norm5), ``predictions``. Keras's BN epsilon (1.001e-5) is
copied with the weights where the source gives it (a live model does). (Keras also zero-pads before its stem max-pool;
after the ReLU that equals PyTorch's implicit -inf padding, so no option is needed for it.)
"""

from __future__ import annotations

from torch import nn

from ...errors import ConfigError
from ...models.densenet import DenseNet, Transition
from .common import KerasLayers, copy_bn, copy_conv, copy_dense, register_converter


@register_converter(DenseNet)
def convert_densenet(model: DenseNet, layers: KerasLayers) -> None:
    """Copy a Keras DenseNet's weights into ``model`` (ImageNet stem, bottleneck layers, same blocks).

    Raises:
        ConfigError: ``model`` is a CIFAR-stem or bottleneck-free DenseNet (Keras has none), the
            a layer is missing or has another shape than reslab's.
    """
    feats = model.features
    if not hasattr(feats, "norm0"):
        raise ConfigError("keras.applications' DenseNets have the ImageNet stem; build the model with stem='imagenet'")
    copy_conv(feats.conv0, layers, "conv1_conv")
    copy_bn(feats.norm0, layers, "conv1_bn")
    for b in range(1, len(model.block_config) + 1):
        block = getattr(feats, f"denseblock{b}")
        for j, layer in enumerate(block.values(), start=1):
            if not layer.bottleneck:
                raise ConfigError("keras.applications' DenseNets use bottleneck layers; build with bottleneck=True")
            prefix = f"conv{b + 1}_block{j}"
            copy_bn(layer.norm1, layers, f"{prefix}_0_bn")
            copy_conv(layer.conv1, layers, f"{prefix}_1_conv")
            copy_bn(layer.norm2, layers, f"{prefix}_1_bn")
            copy_conv(layer.conv2, layers, f"{prefix}_2_conv")
        transition = getattr(feats, f"transition{b}", None)
        if isinstance(transition, Transition):
            copy_bn(transition.norm, layers, f"pool{b + 1}_bn")
            copy_conv(transition.conv, layers, f"pool{b + 1}_conv")
    copy_bn(feats.norm5, layers, "bn")
    if "predictions" in layers and isinstance(model.classifier, nn.Linear):
        copy_dense(model.classifier, layers, "predictions")
    unused = layers.unused_weighted_layers()
    if unused and (unused != ["predictions"] or model.num_classes != 0):
        raise ConfigError(f"Keras layers with weights that have no place in {type(model).__name__}: {unused}")
