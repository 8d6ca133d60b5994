"""Parity with keras.applications ResNet50/101 and ResNet50V2/101V2: same logits after weight copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reslab
from reslab.errors import ConfigError
from reslab.weights.keras import load_keras_weights

from .conftest import keras_logits, randomise_keras_bn

CASES = [
    ("ResNet50V2", "resnet50v2"),
    ("ResNet101V2", "resnet101v2"),
    ("ResNet50", "resnet50_keras"),
]


@pytest.mark.parametrize("keras_name,name", CASES)
def test_same_logits_as_keras(keras, keras_name, name):
    km = getattr(keras.applications, keras_name)(weights=None, classifier_activation=None)
    randomise_keras_bn(km)
    model = load_keras_weights(reslab.create_model(name), km).eval()
    # Keras counts BN moving statistics as (non-trainable) weights; reslab keeps them as buffers.
    trainable = sum(int(np.prod(w.shape)) for w in km.trainable_weights)
    assert sum(p.numel() for p in model.parameters()) == trainable
    x = np.random.default_rng(1).normal(size=(2, 3, 224, 224)).astype("float32")
    expected = keras_logits(km, x)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    assert np.abs(expected).max() > 0.1  # a meaningful comparison, not two zero vectors
    assert np.abs(got - expected).max() <= 1e-4


def test_keras_resnet50_is_an_option_of_the_v1_implementation(keras):
    km = keras.applications.ResNet50(weights=None, classifier_activation=None)
    model = reslab.create_model("resnet50", stride_in="first_1x1", conv_bias="all", bn_eps=1.001e-5)
    load_keras_weights(model, km)  # the same class and layout as resnet50_keras


def test_mismatched_architecture_is_refused(keras):
    km = keras.applications.ResNet50V2(weights=None)
    with pytest.raises(ConfigError, match="no layer|shape"):
        load_keras_weights(reslab.create_model("resnet101v2"), km)
    with pytest.raises(ConfigError, match="keras.applications layouts"):
        load_keras_weights(reslab.create_model("resnet20"), km)
    # a different BN epsilon is no mismatch: Keras's is copied (it used to be refused)
    model = load_keras_weights(reslab.create_model("resnet50v2", bn_eps=1e-5), km)
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1.001e-5}
