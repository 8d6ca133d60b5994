"""Keras weight files load through ``create_model(name, pretrained=PATH)`` without Keras: a keras.applications
model (torch backend) saves its weights in each file format, and the reslab model built from the file gives
Keras's outputs. Keras's ResNet v1 and VGG take BGR (``caffe``); the reslab model takes the same image as RGB."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import reslab
from reslab.errors import CheckpointError

from .conftest import he_normal_weights, keras_logits, randomise_keras_bn


def save(km, path, kind: str):
    from keras.src.legacy.saving import legacy_h5_format

    if kind == "weights.h5":  # Keras 3's model.save_weights
        km.save_weights(path)
    elif kind == "legacy":  # the layout of the .h5 files keras.applications downloads
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, km)
    else:  # "full": model.save("m.h5"): weights under model_weights, the config in model_config
        legacy_h5_format.save_model_to_hdf5(km, str(path))
    return path


def compare(model, km, size: int, bgr: bool, seed: int = 1, batch: int = 2):
    x = np.random.default_rng(seed).normal(size=(batch, 3, size, size)).astype("float32")
    expected = keras_logits(km, x)
    rgb = x[:, ::-1].copy() if bgr else x  # Keras sees x as BGR; reslab the same pixels as RGB
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(rgb)).numpy()
    assert np.abs(expected).max() > 0.1
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))


@pytest.mark.slow
def test_resnet50_weights_h5_caffe_input_reversed(keras, tmp_path):
    km = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    randomise_keras_bn(km)
    path = save(km, tmp_path / "resnet50.weights.h5", "weights.h5")
    model = reslab.create_model("resnet50_keras", pretrained=path)
    cfg = model.pretrained_cfg
    assert cfg["layout"] == "keras_h5" and cfg["preprocessing"]["mode"] == "caffe"
    assert cfg["preprocessing"]["channel_order"] == "BGR"
    compare(model, km, 64, bgr=True)


@pytest.mark.slow
def test_resnet50v2_legacy_h5_tf_preprocessing(keras, tmp_path):
    km = keras.applications.ResNet50V2(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    randomise_keras_bn(km)
    path = save(km, tmp_path / "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5", "legacy")
    model = reslab.create_model("resnet50v2", pretrained=path)
    assert model.pretrained_cfg["preprocessing"]["mode"] == "tf"
    compare(model, km, 64, bgr=False)


@pytest.mark.slow
def test_densenet121_full_model_h5_reads_epsilon_from_the_config(keras, tmp_path):
    km = keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3), classifier_activation=None)
    randomise_keras_bn(km)
    path = save(km, tmp_path / "densenet121.h5", "full")
    model = reslab.create_model("densenet121", pretrained=path)  # no bn_eps: the file's config has it
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1.001e-5}
    assert model.pretrained_cfg["preprocessing"]["mode"] == "torch"
    compare(model, km, 32, bgr=False)


@pytest.mark.slow
def test_densenet121_legacy_weights_only_with_registry_bn_eps(keras, tmp_path):
    km = keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3), classifier_activation=None)
    randomise_keras_bn(km)
    path = save(km, tmp_path / "densenet121_weights_tf_dim_ordering_tf_kernels.h5", "legacy")
    # a weights-only file has no epsilon: the registry's keras entries pass Keras's through model_args
    model = reslab.create_model("densenet121", pretrained=path, bn_eps=1.001e-5)
    compare(model, km, 32, bgr=False)


@pytest.mark.slow
def test_vgg16_weights_h5_with_its_dense_head(keras, tmp_path):
    km = keras.applications.VGG16(weights=None, classifier_activation=None)
    he_normal_weights(km)
    path = save(km, tmp_path / "vgg16.weights.h5", "weights.h5")
    model = reslab.create_model("vgg16", pretrained=path)
    assert model.pretrained_cfg["preprocessing"]["mode"] == "caffe"
    compare(model, km, 224, bgr=True, batch=1)


@pytest.mark.slow
def test_notop_file_gets_a_new_head(keras, tmp_path, caplog):
    km = keras.applications.ResNet50V2(weights=None, include_top=False, input_shape=(64, 64, 3))
    randomise_keras_bn(km)
    path = save(km, tmp_path / "resnet50v2_notop.h5", "legacy")
    with caplog.at_level("INFO", logger="reslab.weights"):
        model = reslab.create_model("resnet50v2", pretrained=path, num_classes=10)
    assert "classifier 0 -> 10 classes" in caplog.text
    assert model.pretrained_cfg["head_replaced"] and model.fc.out_features == 10
    x = np.random.default_rng(3).normal(size=(1, 3, 64, 64)).astype("float32")
    expected = keras_logits(km, x).transpose(0, 3, 1, 2)
    with torch.no_grad():
        got = model.eval().forward_features(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))


def test_keras_file_into_the_wrong_model_is_refused(keras, tmp_path):
    km = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = save(km, tmp_path / "resnet50_notop.weights.h5", "weights.h5")
    with pytest.raises(CheckpointError, match="does not fit resnet101_keras: the Keras model has no layer 'conv4_b"):
        reslab.create_model("resnet101_keras", pretrained=path)
    with pytest.raises(CheckpointError, match="does not fit resnet50v2"):
        reslab.create_model("resnet50v2", pretrained=path)
    km = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = save(km, tmp_path / "vgg16_notop.weights.h5", "weights.h5")
    with pytest.raises(CheckpointError, match="convolutions only"):  # fc6 / fc7 would stay random
        reslab.create_model("vgg16", pretrained=path)
