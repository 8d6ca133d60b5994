"""Every keras.applications model reslab has gives Keras's outputs after ``load_keras_weights``, on
reslab's default registered models (the BatchNorm epsilon comes from the Keras layers: no ``bn_eps``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reslab
from reslab.weights.keras import load_keras_weights

from .conftest import he_normal_weights, keras_logits, randomise_keras_bn

SIZE = 64  # small inputs keep the eleven models fast; the layouts do not depend on the size
CASES = [
    ("ResNet50", "resnet50_keras"),
    ("ResNet101", "resnet101_keras"),
    ("ResNet152", "resnet152_keras"),
    ("ResNet50V2", "resnet50v2"),
    ("ResNet101V2", "resnet101v2"),
    ("ResNet152V2", "resnet152v2"),
    ("VGG16", "vgg16"),
    ("VGG19", "vgg19"),
    ("DenseNet121", "densenet121"),
    ("DenseNet169", "densenet169"),
    ("DenseNet201", "densenet201"),
]


@pytest.mark.slow
@pytest.mark.parametrize("keras_name,name", CASES)
def test_every_keras_application_gives_keras_outputs(keras, keras_name, name):
    vgg = keras_name.startswith("VGG")
    # VGG's Dense head needs 224x224 (its Flatten); the 224 case with the head is test_keras_vgg's
    km = getattr(keras.applications, keras_name)(
        weights=None, include_top=not vgg, input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    he_normal_weights(km) if vgg else randomise_keras_bn(km)
    model = reslab.create_model(name, num_classes=0 if vgg else None)
    load_keras_weights(model, km).eval()
    x = np.random.default_rng(1).normal(size=(1, 3, SIZE, SIZE)).astype("float32")
    expected = keras_logits(km, x)
    with torch.no_grad():
        got = (model.forward_features if vgg else model)(torch.from_numpy(x)).numpy()
    if vgg:
        expected = expected.transpose(0, 3, 1, 2)  # Keras's NHWC feature map
    assert np.abs(expected).max() > 0.1  # a meaningful comparison, not two near-zero tensors
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))


def test_densenet169_as_the_issue_states_it(keras):
    """The issue's own line: today it raises "Keras epsilon 1.001e-05 != reslab's 1e-05"."""
    km = keras.applications.DenseNet169(weights=None, input_shape=(32, 32, 3), classifier_activation=None)
    randomise_keras_bn(km)
    model = load_keras_weights(reslab.create_model("densenet169"), km).eval()
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1.001e-5}
    x = np.random.default_rng(2).normal(size=(1, 3, 32, 32)).astype("float32")
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - keras_logits(km, x)).max() <= 1e-4
