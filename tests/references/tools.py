"""Helpers for the parity tests against the Keras references (Keras 3 on the torch backend).

What Keras 3.15 can still write (checked on 3.15.1, torch backend; see WEIGHT_FILES.md for the layouts):

- ``model.save_weights("m.weights.h5")``: Keras 3's weights-only HDF5 (``layers/.../vars/0, 1, ...``); any model,
  subclassed included. Another suffix is refused (``ValueError: The filename must end in .weights.h5``), unless
  ``max_shard_size=`` is given, which writes ``m.weights.json`` + ``m_00000.weights.h5``, ... shards.
- ``model.save("m.keras")``: the native zip (``config.json``, ``metadata.json``, ``model.weights.h5``, the same
  layout as above); not for tutorial 000's subclassed ``ResNet`` (``NotImplementedError``: no ``get_config``).
- ``model.save("m.h5")``: the legacy full-model HDF5 (root attribute ``model_config``, weights under
  ``model_weights``), with a "legacy format" warning. Sequential and functional models only: a subclassed model
  whose ``__init__`` arguments are not serialisable (tutorial 000's ``ResNet``) raises ``NotImplementedError``, as
  TF 2's Keras did (it could only write such a model's weights to ``.h5``).
- the legacy weights-only ``.h5`` (keras.applications' downloads' layout: root ``layer_names``): no public API any
  more (``save_weights`` refuses ``.h5``); :func:`save_keras_legacy_weights_h5` calls Keras's own writer,
  ``keras.src.legacy.saving.legacy_h5_format.save_weights_to_hdf5_group``. Works for every model, subclassed too.
- TensorFlow SavedModel / ``model.export``: needs the TensorFlow backend (not available here).

Keras 3 can read all of them back: ``model.load_weights`` (``.weights.h5``, ``.weights.json``, legacy ``.h5``
weights or full model files) and ``keras.models.load_model`` (``.keras``, legacy full-model ``.h5``; the DenseNet
file needs ``custom_objects={"Scale": Scale}`` unless the registered class is imported).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

#: the variable names randomise_keras gives non-trivial values, by kind
_UNIT_SCALE = ("gamma", "moving_variance")  # BatchNormalization and Scale: U(0.5, 1.5)
_SHIFTS = ("beta", "moving_mean")  # N(0, 0.2)


def randomise_keras(model, seed: int = 0, bias_std: float = 0.1, calibrate: np.ndarray | None = None) -> None:
    """Give every weight of a Keras model a non-trivial value, deterministically (numpy ``default_rng(seed)``, the
    variables in ``model.weights`` order).

    Keras's defaults (Glorot or the tutorials' ``uniform`` +-0.05 kernels, zero biases, BatchNorm 1/0/0/1) shrink
    VGG's or AlexNet's logits to ~1e-2 or zero, and would hide a swapped BatchNorm mean/variance or a missing Scale:
    a 1e-4 relative logit comparison would mean nothing. Here: kernels He-normal (std sqrt(2 / fan_in), fan_in
    the product of all but the last axis: HWI for Conv2D, the input width for Dense); biases N(0, bias_std);
    BatchNormalization gamma and moving_variance and Scale gamma U(0.5, 1.5); beta and moving_mean N(0, 0.2).

    ``calibrate`` (an NCHW batch, as for :func:`keras_logits`): BatchNorm statistics unrelated to the data do not
    normalise, and in the residual networks the activations then grow with depth (tutorial 004's ResNet50, with
    no ReLU after its additions, gives logits ~2e5 where a wrong late BatchNorm beta changes them by ~0.3, below
    a 1e-4 relative tolerance). With a batch, every BatchNormalization's moving statistics are set from the
    statistics of its input in one inference-mode forward pass (each layer reached in turn, so it sees the earlier
    layers' final statistics), perturbed: ``moving_mean = mean + N(0, 0.2) * std``,
    ``moving_variance = var * U(0.5, 1.5)`` (the batch's biased variance, floored at a quarter of the layer's mean
    so that a channel dead on the batch is not amplified on other inputs); the activations stay O(1).
    """
    rng = np.random.default_rng(seed)
    for v in model.weights:
        name = v.path.rsplit("/", 1)[-1]
        shape = tuple(v.shape)
        if name == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        elif name == "bias":
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(bias_std)
        elif name in _UNIT_SCALE:
            value = rng.random(shape, dtype=np.float32) + np.float32(0.5)
        elif name in _SHIFTS:
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.2)
        else:
            raise ValueError(f"randomise_keras: no rule for the variable {v.path!r}")
        v.assign(value)
    if calibrate is not None:
        _calibrate_batchnorm(model, calibrate, rng)


def _batchnorms(model) -> list:
    import keras

    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


def _calibrate_batchnorm(model, x_nchw: np.ndarray, rng: np.random.Generator) -> None:
    """One inference-mode forward pass in which each BatchNormalization, when reached, first sets its moving
    statistics from its input (so each sees the already perturbed layers before it: no compounding drift)."""
    import keras
    import torch

    class Calibrating(keras.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            axes = [i for i in range(len(inputs.shape)) if i != self.axis % len(inputs.shape)]
            mean = keras.ops.convert_to_numpy(keras.ops.mean(inputs, axis=axes))
            var = keras.ops.convert_to_numpy(keras.ops.var(inputs, axis=axes))
            # a channel (nearly) dead on this batch (ReLU before BN) would be amplified up to 1/sqrt(eps) on
            # other inputs: floor its variance at a quarter of the layer's mean
            var = np.maximum(var, 0.25 * float(var.mean()) + 1e-6)
            self.moving_mean.assign((mean + rng.normal(0.0, 0.2, mean.shape) * np.sqrt(var)).astype("float32"))
            self.moving_variance.assign((var * rng.uniform(0.5, 1.5, var.shape)).astype("float32"))
            return super().call(inputs, training=False, mask=mask)

    bns = _batchnorms(model)
    classes = [type(bn) for bn in bns]
    for bn in bns:
        bn.__class__ = Calibrating
    try:
        with torch.no_grad():
            model(np.ascontiguousarray(np.asarray(x_nchw, dtype="float32").transpose(0, 2, 3, 1)), training=False)
    finally:
        for bn, cls in zip(bns, classes):
            bn.__class__ = cls


def keras_logits(model, x_nchw: np.ndarray, squeeze_spatial: bool = True) -> np.ndarray:
    """Run a Keras model (which takes NHWC) in inference mode on an NCHW batch; its output as NumPy.

    With ``squeeze_spatial`` an ``(N, 1, 1, C)`` output (the GoogLeNet of tutorial 004, whose Dense layers act on
    the 4-D pooled map) is returned as ``(N, C)``; other shapes are returned unchanged.
    """
    x = np.ascontiguousarray(np.asarray(x_nchw, dtype="float32").transpose(0, 2, 3, 1))
    out = model(x, training=False)
    out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
    if squeeze_spatial and out.ndim == 4 and out.shape[1:3] == (1, 1):
        out = out.reshape(out.shape[0], out.shape[3])
    return out


def save_keras_weights(model, path) -> Path:
    """Keras 3's weights-only file: ``model.save_weights(path)`` (the name must end in ``.weights.h5``)."""
    path = Path(path)
    model.save_weights(path)
    return path


def save_keras_legacy_h5(model, path) -> Path:
    """The legacy full-model HDF5: ``model.save(path)`` with an ``.h5`` name (config + weights).

    Sequential and functional models only: tutorial 000's subclassed ResNet raises ``NotImplementedError`` (its
    config is not serialisable); :func:`save_keras_legacy_weights_h5` writes its weights in the legacy layout.
    """
    path = Path(path)
    if path.suffix != ".h5" or path.name.endswith(".weights.h5"):
        raise ValueError(f"a legacy full-model file is named *.h5 (not *.weights.h5): {path}")
    model.save(path)
    return path


def save_keras_legacy_weights_h5(model, path) -> Path:
    """The legacy weights-only HDF5 (the layout of keras.applications' downloaded ``*_weights_tf_*.h5``): root
    attribute ``layer_names``, one group per layer with ``weight_names``. Keras 3 has no public API writing it;
    this calls Keras's own legacy writer (what TF 2's ``model.save_weights("m.h5")`` did)."""
    from keras.src.legacy.saving import legacy_h5_format

    path = Path(path)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def _attr_text(value, limit: int | None) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    elif isinstance(value, np.ndarray):
        value = [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.tolist()]
    text = repr(value) if not isinstance(value, str) else value
    return text if limit is None or len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def h5_tree(path, config_limit: int | None = 300) -> str:
    """The HDF5 tree of a file, one line per group or dataset, in h5py's iteration order (``visititems``, which is
    alphabetical by name): groups end in ``/``, datasets show their shape and dtype, then the attributes in full
    (``layer_names``, ``weight_names``, ``name``), except ``model_config``, cut to ``config_limit`` characters."""
    lines = []
    with h5py.File(path, "r") as f:

        def line(name, obj):
            attrs = " ".join(
                f"@{k}={_attr_text(obj.attrs[k], config_limit if k == 'model_config' else None)}" for k in obj.attrs
            )
            if isinstance(obj, h5py.Dataset):
                lines.append(f"{name} {obj.shape} {obj.dtype}" + (f" {attrs}" if attrs else ""))
            else:
                lines.append(f"{name}/" + (f" {attrs}" if attrs else ""))

        line("", f)
        f.visititems(line)
    return "\n".join(lines) + "\n"
