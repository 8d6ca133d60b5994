"""Keras ``keras.applications.VGG16`` / ``VGG19`` -> reslab ``vgg16`` / ``vgg19``.

Keras names the convolutions ``block{b}_conv{i}`` (b counts max-pools, i the convolutions between
them) and the dense layers ``fc1``, ``fc2``, ``predictions``. Its ``Flatten`` reads the NHWC map in
(h, w, c) order, so ``fc1``'s rows are reordered to PyTorch's (c, h, w). A Keras model built with
``include_top=False`` fills the convolutions only (the classifier keeps its initialisation).
"""

from __future__ import annotations

from torch import nn

from ...errors import ConfigError
from ...models.vgg import VGG
from .common import KerasLayers, copy_conv, copy_dense, register_converter


def keras_vgg_conv_names(model: VGG) -> list[tuple[nn.Conv2d, str]]:
    """Each convolution of ``model.features`` with its Keras layer name, in order."""
    pairs = []
    block, conv = 1, 0
    for m in model.features:
        if isinstance(m, nn.MaxPool2d):
            block, conv = block + 1, 0
        elif isinstance(m, nn.Conv2d):
            conv += 1
            pairs.append((m, f"block{block}_conv{conv}"))
    return pairs


@register_converter(VGG)
def convert_vgg(model: VGG, layers: KerasLayers) -> None:
    """Copy a Keras VGG's weights into ``model`` (same configuration, no batch norm).

    Raises:
        ConfigError: ``model`` has batch norm (Keras's VGGs have none), or a layer is missing or
            has another shape than reslab's.
    """
    if any(isinstance(m, nn.BatchNorm2d) for m in model.features):
        raise ConfigError("keras.applications' VGGs have no batch norm; convert into vgg16 / vgg19, not *_bn")
    pairs = keras_vgg_conv_names(model)
    for conv, name in pairs:
        copy_conv(conv, layers, name)
    if "fc1" in layers:
        last_chs = pairs[-1][0].out_channels
        fc6, fc7, fc8 = model.classifier[0], model.classifier[3], model.classifier[6]
        copy_dense(fc6, layers, "fc1", from_hwc=(7, 7, last_chs))  # reslab pools adaptively to 7x7
        copy_dense(fc7, layers, "fc2")
        if isinstance(fc8, nn.Linear):
            copy_dense(fc8, layers, "predictions")
    unused = layers.unused_weighted_layers()
    if unused and (unused != ["predictions"] or model.num_classes != 0):
        raise ConfigError(f"Keras layers with weights that have no place in {type(model).__name__}: {unused}")
