"""Keras weight files, read with h5py (no Keras, no TensorFlow):

- the legacy HDF5 weights that keras.applications downloads (``resnet50_weights_tf_dim_ordering_tf_kernels
  .h5``): root attribute ``layer_names``, one group per layer with attribute ``weight_names`` naming its
  datasets (``conv1_bn/gamma:0``); the full-model ``.h5`` (``model.save("m.h5")``) has the same under a
  ``model_weights`` group and the architecture in the root attribute ``model_config`` (JSON), from which
  each BatchNorm's epsilon is read;
- Keras 3's ``.weights.h5`` (``model.save_weights``): ``layers/<path>/vars/0, 1, ...`` with the layer's
  name in the ``vars`` group's ``name`` attribute, arrays in the layer's weight order (no config).

Weights-only files carry no BatchNorm epsilon: the model's own is kept (the registry builds Keras-weight
models with ``bn_eps=1.001e-5``, keras.applications' value, through ``model_args``).

The layers are copied by :mod:`reslab.weights.keras`'s converters (``Loaded.convert``). Keras's ResNet v1
and VGG take BGR input (``caffe`` preprocessing): the loader reverses the first convolution's input
channels so the reslab model takes RGB like every other, and puts the matching preprocessing in
``Loaded.meta["preprocessing"]`` (``tf`` for ResNetV2, ``torch`` for DenseNet).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError, ConfigError
from ..keras.common import KerasRecord
from ..preprocessing import CAFFE_MEAN, CAFFE_STD, IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from . import Loaded

LAYOUT = "keras_h5"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: keras.applications' preprocess_input modes as reslab preprocessing (images loaded with Keras's
#: ``load_img(path, target_size=(224, 224))``: squashed to size, nearest-neighbour)
KERAS_PREPROCESSING = {
    "caffe": Preprocessing(
        crop="squash", interpolation="nearest", mean=CAFFE_MEAN, std=CAFFE_STD, mode="caffe", channel_order="BGR"
    ),
    "tf": Preprocessing(crop="squash", interpolation="nearest", mean=(0.5,) * 3, std=(0.5,) * 3, mode="tf"),
    "torch": Preprocessing(crop="squash", interpolation="nearest", mean=IMAGENET_MEAN, std=IMAGENET_STD),
}
#: the first convolution's Keras name in each family (for the file's input channel count)
_FIRST_CONVS = ("conv1_conv", "block1_conv1")


def sniff(path: Path, obj: Any) -> bool:
    if obj is not None:
        return False
    with open(path, "rb") as f:
        return f.read(8) == HDF5_SIGNATURE


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _attr_list(group, name: str) -> list[str] | None:
    """A list attribute, also where Keras split a long one into ``name0``, ``name1``, ... (HDF5 limits an
    attribute's size; keras's ``save_attributes_to_hdf5_group`` chunks it)."""
    if name in group.attrs:
        return [_text(v) for v in np.asarray(group.attrs[name]).ravel()]
    if f"{name}0" not in group.attrs:
        return None
    values, i = [], 0
    while f"{name}{i}" in group.attrs:
        values += [_text(v) for v in np.asarray(group.attrs[f"{name}{i}"]).ravel()]
        i += 1
    return values


def _read_legacy(group) -> tuple[dict[str, list[np.ndarray]], dict[str, dict]]:
    arrays, config = {}, {}
    for layer in _attr_list(group, "layer_names") or []:
        names = _attr_list(group[layer], "weight_names") or []
        arrays[layer] = [np.asarray(group[layer][n]) for n in names]
        config[layer] = {"weight_names": names}
    return arrays, config


def _read_keras3(group, arrays: dict[str, list[np.ndarray]]) -> None:
    for key in group:
        sub = group[key]
        if "vars" in sub:
            v = sub["vars"]
            name = _text(v.attrs.get("name", key))
            arrays[name] = [np.asarray(v[str(i)]) for i in range(len(v))]
        if "layers" in sub:  # a nested model's layers
            _read_keras3(sub["layers"], arrays)


def _layer_configs(model_config: str) -> dict[str, dict]:
    """Each layer's BatchNorm settings from a full-model file's ``model_config`` JSON."""
    out: dict[str, dict] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            cfg = node.get("config")
            if isinstance(cfg, dict) and "name" in cfg and "epsilon" in cfg:
                out[cfg["name"]] = {k: cfg[k] for k in ("epsilon", "scale", "center") if k in cfg}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(model_config))
    return out


def read_keras_h5(path: str | Path) -> tuple[dict[str, list[np.ndarray]], dict[str, dict]]:
    """``({layer_name: [arrays]}, {layer_name: config})`` of a Keras weight file (any of the three kinds).

    Raises:
        CheckpointError: an HDF5 file that is none of them, or unreadable.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "model_weights" in f:
                arrays, config = _read_legacy(f["model_weights"])
                if "model_config" in f.attrs:
                    for name, cfg in _layer_configs(_text(f.attrs["model_config"])).items():
                        config.setdefault(name, {}).update(cfg)
            elif _attr_list(f, "layer_names") is not None:
                arrays, config = _read_legacy(f)
            elif "layers" in f:
                arrays, config = {}, {}
                _read_keras3(f["layers"], arrays)
            else:
                raise CheckpointError(
                    f"{path} is an HDF5 file but not Keras weights (no layer_names, model_weights or layers; "
                    f"top-level keys: {', '.join(list(f)[:4]) or 'none'})"
                )
    except OSError as e:
        raise CheckpointError(f"{path} is an HDF5 file that cannot be read: {e}") from None
    return arrays, config


def _natural(text: str) -> tuple:
    """``layers/conv2d_10`` after ``layers/conv2d_2`` (h5py iterates names alphabetically)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _records_keras3(group, prefix: str, out: list[KerasRecord]) -> None:
    for key in group:
        if key == "vars":
            continue
        sub = group[key]
        if not hasattr(sub, "keys"):
            continue
        where = f"{prefix}/{key}" if prefix else key
        v = sub.get("vars")
        if v is not None and len(v):
            arrays = [np.asarray(v[str(i)]) for i in range(len(v))]
            out.append(KerasRecord(_text(v.attrs.get("name", key)), where, arrays, _natural(where)))
        _records_keras3(sub, where, out)


def _records_legacy(group, configs: dict[str, dict]) -> list[KerasRecord]:
    """One record per layer of ``layer_names``; a nested layer's weights (``res_net/sequential_2/
    basic_block_2/conv2d_5/kernel``) are split into its sublayers by the weight names' prefixes."""
    out = []
    for index, layer in enumerate(_attr_list(group, "layer_names") or []):
        by_prefix: dict[str, list[np.ndarray]] = {}
        for weight in _attr_list(group[layer], "weight_names") or []:
            prefix = weight.rsplit("/", 1)[0] if "/" in weight else layer
            by_prefix.setdefault(prefix, []).append(np.asarray(group[layer][weight]))
        for sub, (prefix, arrays) in enumerate(by_prefix.items()):
            name = prefix.rsplit("/", 1)[-1]
            out.append(KerasRecord(name, f"{layer}/{prefix}", arrays, (index, sub), dict(configs.get(name) or {})))
    return out


def read_keras_records(path: str | Path) -> list[KerasRecord]:
    """Every layer with weights of a Keras weight file (any kind), with its name and place in the file: what
    loading by creation order needs (models whose layer names carry nothing, such as the tutorials').

    Raises:
        CheckpointError: an HDF5 file that is not Keras weights, or unreadable.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "model_weights" in f:
                configs = _layer_configs(_text(f.attrs["model_config"])) if "model_config" in f.attrs else {}
                return _records_legacy(f["model_weights"], configs)
            if _attr_list(f, "layer_names") is not None:
                return _records_legacy(f, {})
            if "layers" in f or "vars" in f:
                out: list[KerasRecord] = []
                _records_keras3(f, "", out)
                return out
    except OSError as e:
        raise CheckpointError(f"{path} is an HDF5 file that cannot be read: {e}") from None
    raise CheckpointError(f"{path} is an HDF5 file but not Keras weights (no layer_names, model_weights or layers)")


def keras_preprocessing_mode(model: nn.Module) -> str:
    """keras.applications' ``preprocess_input`` mode for the family ``model`` belongs to."""
    from ...models.densenet import DenseNet
    from ...models.resnet import ResNet

    if isinstance(model, ResNet):
        return "tf" if model.unit == "full_preact" else "caffe"
    if isinstance(model, DenseNet):
        return "torch"
    return "caffe"  # VGG


def reverse_input_channels(model: nn.Module) -> None:
    """Reverse the input channels of ``model``'s first convolution (BGR weights -> RGB input)."""
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        conv.weight.copy_(conv.weight.flip(1))


def read(path: Path, obj: Any) -> Loaded:
    arrays, config = read_keras_h5(path)
    meta: dict[str, Any] = {}
    if "predictions" in arrays and arrays["predictions"]:
        meta["num_classes"] = int(arrays["predictions"][0].shape[-1])
    else:
        meta["num_classes"] = 0  # include_top=False: no classifier in the file
    for name in _FIRST_CONVS:
        if arrays.get(name):
            meta["in_chans"] = int(arrays[name][0].shape[2])
            break
    if "predictions" not in arrays and "in_chans" not in meta:
        # not a keras.applications file (a model of one's own, a tutorial's): the shapes in creation order
        from ..keras.tutorials import file_shape

        meta.update(file_shape(read_keras_records(path), path))
    loaded = Loaded(None, LAYOUT, meta=meta)

    def convert(model: nn.Module) -> None:
        from ..keras.tutorials import TUTORIAL_KERAS_MODELS, convert_by_creation_order

        if getattr(model, "model_name", None) in TUTORIAL_KERAS_MODELS:
            # the tutorials' own files: auto-named layers, matched by kind and creation order; their images
            # were fed as the tutorial's code fed them, so the file records no preprocessing
            convert_by_creation_order(model, read_keras_records(path), str(path))
            return
        from ...models.vgg import VGG
        from ..keras import KerasLayers, load_keras_weights

        if isinstance(model, VGG) and "fc1" not in arrays and model.num_classes == 0:
            # include_top=False: fc1 / fc2 of reslab's VGG head would keep random weights (a partial load)
            raise CheckpointError(
                f"{path} holds VGG's convolutions only (include_top=False): reslab's VGG head (fc6, fc7) would "
                "stay random; copy them with reslab.weights.keras.load_keras_weights into a model you fine-tune"
            )
        try:
            load_keras_weights(model, KerasLayers(arrays, config))
        except ConfigError as e:
            name = getattr(model, "model_name", type(model).__name__)
            raise CheckpointError(f"{path} (keras_h5 layout) does not fit {name}: {e}") from None
        mode = keras_preprocessing_mode(model)
        if mode == "caffe":
            reverse_input_channels(model)
        loaded.meta["preprocessing"] = KERAS_PREPROCESSING[mode].to_dict()

    loaded.convert = convert
    return loaded
