"""Parity with keras.applications.DenseNet121: the same logits after copying the weights into reslab's
densenet121 (Keras's BN epsilon, 1.001e-5, is copied with them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reslab
from reslab.errors import ConfigError
from reslab.weights.keras import load_keras_weights

from .conftest import keras_logits, randomise_keras_bn


@pytest.fixture(scope="module")
def keras_densenet121(keras):
    km = keras.applications.DenseNet121(weights=None, classifier_activation=None)
    randomise_keras_bn(km)  # non-trivial gamma / beta / moving statistics in all 121 BN layers
    return km


def test_densenet121_same_logits_as_keras(keras_densenet121):
    model = reslab.create_model("densenet121")  # torchvision's eps 1e-5: Keras's is copied
    load_keras_weights(model, keras_densenet121).eval()
    trainable = sum(int(np.prod(w.shape)) for w in keras_densenet121.trainable_weights)
    assert sum(p.numel() for p in model.parameters()) == trainable == 7_978_856
    x = np.random.default_rng(1).normal(size=(2, 3, 224, 224)).astype("float32")
    expected = keras_logits(keras_densenet121, x)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    assert np.abs(expected).max() > 0.5
    assert np.abs(got - expected).max() <= 1e-4


def test_densenet_mismatches_are_refused(keras_densenet121):
    with pytest.raises(ConfigError, match="stem='imagenet'"):
        load_keras_weights(reslab.create_model("densenet_bc100"), keras_densenet121)
    with pytest.raises(ConfigError, match="no layer 'conv4_block25_0_bn'"):  # 169 has 32 layers in block 3
        load_keras_weights(reslab.create_model("densenet169", bn_eps=1.001e-5), keras_densenet121)
    with pytest.raises(ConfigError, match="predictions kernel: shape"):
        load_keras_weights(reslab.create_model("densenet121", bn_eps=1.001e-5, num_classes=10), keras_densenet121)
