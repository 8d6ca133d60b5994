"""Copy the weights of a keras.applications model into the matching reslab model.

Keras is an optional dependency (tests use it on the torch backend, ``KERAS_BACKEND=torch``); nothing
here imports it: the converters only read ``layer.get_weights()`` by layer name.

Usage::

    keras_model = keras.applications.ResNet50V2(weights=None)   # or your trained model
    model = reslab.create_model("resnet50v2")
    load_keras_weights(model, keras_model)                       # same logits in eval mode

``load_keras_weights`` is an exact layer-for-layer copy: a model converted from a Keras ResNet v1 or
VGG then takes Keras's own input (BGR, ``caffe`` preprocessing). Weight *files* loaded through
``create_model(name, pretrained=PATH)`` (:mod:`reslab.weights.layouts.keras_h5`) additionally reverse
the first convolution's input channels, so the model takes RGB like every other reslab model.
BatchNorm epsilons are copied from the Keras layers (1.001e-5 in keras.applications).
"""

from __future__ import annotations

import importlib

from torch import nn

from ...errors import ConfigError
from .common import KerasLayers, converter_for, register_converter

# modules that register converters for their model classes
_CONVERTER_MODULES = ("resnet", "vgg", "densenet")


def load_keras_weights(model: nn.Module, keras_model) -> nn.Module:
    """Copy every weight of ``keras_model`` into ``model`` (in place) and return ``model``.

    ``keras_model``: a Keras model, or a :class:`KerasLayers` (e.g. arrays read from a weight file).

    Raises:
        ConfigError: no converter for this model class, or the layouts do not match (a missing Keras
            layer or a shape mismatch, named with both sides' names and shapes).
    """
    for name in _CONVERTER_MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    convert = converter_for(model)
    if convert is None:
        raise ConfigError(f"no Keras weight converter for {type(model).__name__}")
    convert(model, keras_model if isinstance(keras_model, KerasLayers) else KerasLayers(keras_model))
    return model


__all__ = ["KerasLayers", "load_keras_weights", "register_converter"]
