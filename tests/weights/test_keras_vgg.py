"""Parity with keras.applications.VGG16: the same logits after copying the weights into reslab's vgg16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reslab
from reslab.errors import ConfigError
from reslab.weights.keras import load_keras_weights

from .conftest import he_normal_weights, keras_logits


@pytest.fixture(scope="module")
def keras_vgg16(keras):
    km = keras.applications.VGG16(weights=None, classifier_activation=None)
    he_normal_weights(km)
    return km


def test_vgg16_same_logits_as_keras(keras_vgg16):
    model = load_keras_weights(reslab.create_model("vgg16"), keras_vgg16).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(int(np.prod(w.shape)) for w in keras_vgg16.weights)
    x = np.random.default_rng(1).normal(size=(1, 3, 224, 224)).astype("float32")
    expected = keras_logits(keras_vgg16, x)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    assert np.abs(expected).max() > 0.5  # a meaningful comparison, not two near-zero vectors
    assert np.abs(got - expected).max() <= 1e-4


def test_vgg16_mismatches_are_refused(keras_vgg16):
    with pytest.raises(ConfigError, match="batch norm"):
        load_keras_weights(reslab.create_model("vgg16_bn"), keras_vgg16)
    with pytest.raises(ConfigError, match="no layer 'block3_conv4'"):
        load_keras_weights(reslab.create_model("vgg19"), keras_vgg16)
    with pytest.raises(ConfigError, match="predictions kernel: shape"):
        load_keras_weights(reslab.create_model("vgg16", num_classes=10), keras_vgg16)


def test_vgg16_without_top_fills_the_convolutions(keras):
    km = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = reslab.create_model("vgg16", num_classes=10)
    load_keras_weights(model, km)
    kernel = km.get_layer("block5_conv3").get_weights()[0]
    np.testing.assert_array_equal(model.features[28].weight.detach().numpy(), kernel.transpose(3, 2, 0, 1))
